"""The cast of the labeling tests: one SECRET//ALPHA dataset of three real images, a project over it with a
schema, and a subject for each way to be refused (by the project's gates, or by its dataset's).

Users are created directly (no password hashing); the dataset, the images, the project and its tasks go through
the real actions and the real import API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from appliance.accounts.models import User
from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import add_member, create_dataset
from appliance.datasets.models import Dataset, Item
from appliance.labeling.actions import add_project_member, create_project, create_tasks
from appliance.labeling.models import Project, Task
from tests.conftest import sign_in
from tests.datasets.conftest import person
from tests.datasets.imagery import image_bytes

IMAGE_SIZE = (96, 64)
SCHEMA: dict[str, Any] = {
    "classes": [
        {
            "name": "vessel",
            "colour": "#ff0000",
            "shortcut": "v",
            "attributes": [
                {"name": "moored", "kind": "checkbox"},
                {"name": "type", "kind": "select", "options": ["cargo", "tanker"]},
                {"name": "length", "kind": "number", "min": 0, "max": 500},
                {"name": "note", "kind": "text"},
            ],
        },
        {"name": "building", "colour": "#00ff00", "shortcut": "b", "attributes": []},
    ]
}


@dataclass(frozen=True)
class Crew:
    dataset: Dataset
    project: Project
    owner: User  # manager, TOP SECRET, ALPHA+BRAVO: created the dataset and the project
    analyst: User  # analyst, SECRET, ALPHA, member of both: allowed
    second: User  # another analyst like `analyst`
    reviewer: User  # reviewer, SECRET, ALPHA, member of both
    low_clearance: User  # CONFIDENTIAL, member of both: refused by the label gate (level)
    no_compartment: User  # SECRET without ALPHA, member of both: refused by the label gate (compartment)
    not_member: User  # member of the dataset only: refused by the project's need-to-know
    not_dataset_member: User  # member of the project only: refused by the dataset's need-to-know on tasks


def import_images(dataset: Dataset, uploader: User, seeds: list[int]) -> list[Item]:
    client = Client()
    sign_in(client, uploader)
    files = [SimpleUploadedFile(f"img-{seed}.png", image_bytes(seed, "PNG", IMAGE_SIZE)) for seed in seeds]
    response = client.post(f"/api/datasets/{dataset.pk}/items", {"files": files})
    assert response.status_code == 201, response.content
    return list(Item.objects.filter(dataset=dataset).order_by("id"))


def import_images_as(dataset: Dataset, uploader: User, files: dict[str, bytes]) -> list[Item]:
    """Import the given images (name -> bytes) through the real upload API."""
    client = Client()
    sign_in(client, uploader)
    uploads = [SimpleUploadedFile(name, content) for name, content in files.items()]
    response = client.post(f"/api/datasets/{dataset.pk}/items", {"files": uploads})
    assert response.status_code == 201, response.content
    return list(Item.objects.filter(dataset=dataset).order_by("id"))


def build_crew() -> Crew:
    owner = person("owner", "manager", "TOP SECRET", ["ALPHA", "BRAVO"])
    dataset = create_dataset(owner, name="harbour", classification="SECRET", compartments=["ALPHA"])
    import_images(dataset, owner, [1, 2, 3])
    project = create_project(owner, name="harbour vessels", dataset_ids=[dataset.pk], schema=SCHEMA)
    people = {
        "analyst": person("ana", "analyst", "SECRET", ["ALPHA"]),
        "second": person("bob", "analyst", "SECRET", ["ALPHA"]),
        "reviewer": person("rev", "reviewer", "SECRET", ["ALPHA"]),
        "low_clearance": person("low", "analyst", "CONFIDENTIAL", ["ALPHA"]),
        "no_compartment": person("nocomp", "analyst", "SECRET", []),
        "not_member": person("stranger", "analyst", "SECRET", ["ALPHA"]),
        "not_dataset_member": person("halfway", "analyst", "SECRET", ["ALPHA"]),
    }
    for key, user in people.items():
        if key != "not_dataset_member":
            add_member(owner, dataset=dataset, member=user)
        if key != "not_member":
            add_project_member(owner, project=project, member=user)
    create_tasks(owner, project=project)
    return Crew(dataset=dataset, project=project, owner=owner, **people)


@pytest.fixture
def crew(db: None) -> Crew:
    return build_crew()


def tasks_of(crew: Crew) -> list[Task]:
    return list(Task.objects.filter(project=crew.project).order_by("id"))


def records(action: str) -> list[dict[str, Any]]:
    return [json.loads(row.canonical) for row in AuditRecord.objects.filter(action=action).order_by("seq")]


def denials() -> list[dict[str, Any]]:
    return records("access.denied")


def post(client: Client, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def box(x: float = 10, y: float = 10, w: float = 20, h: float = 10, **extra: Any) -> dict[str, Any]:
    return {"op": "create", "kind": "box", "geometry": [x, y, w, h], "class_name": "vessel", "attributes": {}} | extra


# Subjects hidden from the project itself, and the gate each is refused by.
HIDDEN_PROJECT = [
    pytest.param("low_clearance", "label", id="lacking-clearance"),
    pytest.param("no_compartment", "label", id="lacking-compartment"),
    pytest.param("not_member", "membership", id="lacking-project-membership"),
]
