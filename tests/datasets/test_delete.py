"""Deleting a dataset crypto-shreds its imagery: its data key is destroyed, so even a copy of a blob kept
elsewhere can never be decrypted again; the deletion and the destruction are recorded (V-222589; V-222501 the
record of who deleted what and why)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from appliance.auditlog.models import AuditRecord
from appliance.datasets.imports import identity
from appliance.datasets.models import Dataset, Item
from appliance.vault import blobs
from appliance.vault.actions import VaultError
from appliance.vault.models import DataKey
from tests.conftest import sign_in
from tests.datasets.conftest import Cast
from tests.datasets.imagery import image_bytes


def _delete(client: Client, cast: Cast, **body):
    return client.delete(f"/api/datasets/{cast.dataset.pk}", data=json.dumps(body), content_type="application/json")


@pytest.fixture
def stocked(client: Client, cast: Cast):
    sign_in(client, cast.owner)
    files = {"a.jpg": image_bytes(1), "b.jpg": image_bytes(2)}
    response = client.post(
        f"/api/datasets/{cast.dataset.pk}/items", {"files": [SimpleUploadedFile(n, d) for n, d in files.items()]}
    )
    assert response.status_code == 201
    return files


def test_deleting_destroys_the_key_so_a_kept_copy_of_a_blob_is_unreadable(
    client: Client, cast: Cast, stocked, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    item = Item.objects.get(name="a.jpg")
    kept = tmp_path / "kept-copy"
    shutil.copy(blobs.blob_path(item.image_blob), kept)
    key_id = cast.dataset.data_key_id
    with django_capture_on_commit_callbacks(execute=True):  # the blob files go once the deletion commits
        response = _delete(client, cast, confirm_name="harbour survey", reason="end of retention")
    assert response.status_code == 204
    assert not Dataset.objects.filter(pk=cast.dataset.pk).exists()
    assert not Item.objects.exists()
    key = DataKey.objects.get(pk=key_id)
    assert key.is_destroyed
    assert not blobs.blob_path(item.image_blob).exists()
    # Put the kept copy back where it was: with the key destroyed it is noise.
    blobs.blob_path(item.image_blob).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(kept, blobs.blob_path(item.image_blob))
    with pytest.raises(VaultError, match="destroyed"):
        blobs.read(key=key, identity=identity(cast.dataset, item.uid, "image"), blob_id=item.image_blob)
    actions = list(AuditRecord.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["dataset.delete", "vault.key.destroy"]


def test_deleting_needs_the_exact_name_a_reason_and_the_manage_permission(client: Client, cast: Cast, stocked) -> None:
    assert _delete(client, cast, confirm_name="harbour", reason="x").status_code == 400
    assert _delete(client, cast, confirm_name="harbour survey", reason=" ").status_code == 400
    sign_in(client, cast.member)
    assert _delete(client, cast, confirm_name="harbour survey", reason="x").status_code == 404
    assert Item.objects.count() == 2
    assert not DataKey.objects.get(pk=cast.dataset.data_key_id).is_destroyed
