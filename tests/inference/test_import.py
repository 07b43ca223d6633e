"""Importing a model: a signed, intact ONNX file whose manifest fits its graph is registered, encrypted, audited;
anything else is refused with the reason and leaves nothing behind (V-222513: no component is installed without
verifying that it was signed by a key the site trusts)."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from appliance.access.denial import AccessDenied
from appliance.inference import actions
from appliance.inference.manifest import canonical_bytes
from appliance.inference.models import RegisteredModel
from appliance.inference.signing import sign
from appliance.vault.models import DataKey
from tests.datasets.conftest import person
from tests.inference.conftest import LAYOUT, Packaged, console, import_demo, import_toy, records, trust


def _blob_files() -> list[str]:
    root = settings.VAULT_BLOB_DIR
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _assert_nothing_registered() -> None:
    assert RegisteredModel.objects.count() == 0
    assert not DataKey.objects.filter(purpose__startswith="model:").exists()
    assert _blob_files() == []


def _refused(packaged: Packaged, *, manifest: bytes, signature: bytes | None, model: bytes, message: str) -> None:
    with console(), pytest.raises(actions.ModelRefused, match=message):
        actions.import_model(None, manifest=manifest, signature=signature, model=model, classification="SECRET")
    _assert_nothing_registered()
    assert records("model.import")[-1]["outcome"] == "error"


def _resigned(packaged: Packaged, raw: dict, key: Ed25519PrivateKey | None = None) -> tuple[bytes, bytes]:
    body = canonical_bytes(raw)
    return body, sign(key or packaged.key, body).encode()


def test_a_signed_model_is_registered_encrypted_and_audited(db, packaged: Packaged) -> None:
    trust(packaged)
    row = import_demo(packaged, LAYOUT)
    assert row.ref == "layout-cdla@1.2.1"
    assert row.classes[:3] == ["text", "title", "figure"]  # from the graph's own metadata
    assert row.access_label().banner() == "SECRET//ALPHA"
    stored = _blob_files()
    assert len(stored) == 1
    plaintext = packaged.model(LAYOUT)
    with open(stored[0], "rb") as handle:
        ciphertext = handle.read()
    assert plaintext[:4096] not in ciphertext  # V-222587: the model file is stored encrypted
    [audit] = [r for r in records("model.import") if r["outcome"] == "ok"]
    assert audit["details"]["sha256"] == hashlib.sha256(plaintext).hexdigest()
    assert audit["details"]["signed_by"] == row.signed_by.key_id


def test_an_unsigned_model_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    _refused(
        packaged, manifest=packaged.manifest(LAYOUT), signature=None, model=packaged.model(LAYOUT), message="unsigned"
    )


def test_a_model_file_with_one_byte_changed_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    model = bytearray(packaged.model(LAYOUT))
    model[len(model) // 2] ^= 0x01
    _refused(
        packaged,
        manifest=packaged.manifest(LAYOUT),
        signature=packaged.signature(LAYOUT),
        model=bytes(model),
        message="the file was modified",
    )


def test_a_manifest_with_one_byte_changed_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    manifest = packaged.manifest(LAYOUT).replace(b'"score_threshold":0.5', b'"score_threshold":0.1')
    assert manifest != packaged.manifest(LAYOUT)
    _refused(
        packaged,
        manifest=manifest,
        signature=packaged.signature(LAYOUT),
        model=packaged.model(LAYOUT),
        message="does not verify over this manifest: the manifest was altered",
    )


def test_a_model_signed_by_an_unknown_key_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    manifest, signature = _resigned(packaged, json.loads(packaged.manifest(LAYOUT)), Ed25519PrivateKey.generate())
    _refused(packaged, manifest=manifest, signature=signature, model=packaged.model(LAYOUT), message="not enrolled")


def test_a_signature_naming_a_trusted_key_but_made_by_another_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    forged = json.loads(sign(Ed25519PrivateKey.generate(), packaged.manifest(LAYOUT)).encode())
    forged["key_id"] = json.loads(packaged.signature(LAYOUT))["key_id"]
    _refused(
        packaged,
        manifest=packaged.manifest(LAYOUT),
        signature=json.dumps(forged).encode(),
        model=packaged.model(LAYOUT),
        message="does not verify",
    )


def test_no_model_is_accepted_before_its_key_is_enrolled(db, packaged: Packaged) -> None:
    _refused(
        packaged,
        manifest=packaged.manifest(LAYOUT),
        signature=packaged.signature(LAYOUT),
        model=packaged.model(LAYOUT),
        message="not enrolled",
    )


def test_a_manifest_whose_input_shape_does_not_match_the_graph_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    raw = json.loads(packaged.manifest(LAYOUT))
    raw["input"]["shape"] = [1, 3, 640, 640]
    manifest, signature = _resigned(packaged, raw)
    _refused(
        packaged,
        manifest=manifest,
        signature=signature,
        model=packaged.model(LAYOUT),
        message=r"input shape \[1, 3, 640, 640\] does not match the graph's \[1, 3, 800, 608\]",
    )


def test_a_manifest_with_a_parameter_its_decoder_does_not_take_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    raw = json.loads(packaged.manifest(LAYOUT))
    raw["decode"]["unclip_ratio"] = 2.0  # a DBNet parameter in a PicoDet manifest
    manifest, signature = _resigned(packaged, raw)
    _refused(
        packaged,
        manifest=manifest,
        signature=signature,
        model=packaged.model(LAYOUT),
        message="unclip_ratio that the picodet decoder does not take",
    )


def test_a_signed_file_that_is_not_onnx_is_refused(db, packaged: Packaged) -> None:
    trust(packaged)
    garbage = b"PK\x03\x04 this is a zip, not an ONNX protobuf" * 50
    raw = json.loads(packaged.manifest(LAYOUT)) | {
        "sha256": hashlib.sha256(garbage).hexdigest(),
        "size": len(garbage),
    }
    manifest, signature = _resigned(packaged, raw)
    _refused(packaged, manifest=manifest, signature=signature, model=garbage, message="not a valid ONNX model")


def test_a_known_output_graph_with_a_fitting_manifest_is_accepted(db, packaged: Packaged) -> None:
    trust(packaged)
    row = import_toy(packaged, name="toy-yolo", level="SECRET", compartments=[])
    assert (row.ref, row.decoder, row.classes) == ("toy-yolo@1", "yolo", ["text", "table"])


def test_only_a_model_manager_may_import_or_retire(db, packaged: Packaged) -> None:
    """V-222513: installing a component is a privileged action; everyone else is refused and recorded."""
    trust(packaged)
    manager = person("man", "manager", "TOP SECRET", ["ALPHA"])
    with pytest.raises(AccessDenied):
        actions.import_model(
            manager,
            manifest=packaged.manifest(LAYOUT),
            signature=packaged.signature(LAYOUT),
            model=packaged.model(LAYOUT),
            classification="SECRET",
        )
    assert records("access.denied")[-1]["details"]["permission"] == "model.manage"
    admin = person("adm", "admin", "SECRET", [])
    row = actions.import_model(
        admin,
        manifest=packaged.manifest(LAYOUT),
        signature=packaged.signature(LAYOUT),
        model=packaged.model(LAYOUT),
        classification="SECRET",
    )
    with pytest.raises(AccessDenied):
        actions.retire_model(manager, model=row, reason="no")
    actions.retire_model(admin, model=row, reason="superseded")
    row.refresh_from_db()
    assert row.state == "retired"
    assert records("model.retire")[-1]["details"] == {"model": row.ref, "reason": "superseded"}
