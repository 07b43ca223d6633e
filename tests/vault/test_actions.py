"""Data keys: created wrapped, destroyed for good (crypto-shredding), rewrapped by KEK rotation; each audited.

V-222589 / V-222587: stored data stays encrypted under keys only the KEK can unwrap, across KEK rotation.
V-222444: audit records name keys by id and never carry key bytes.
"""

from __future__ import annotations

import os

import pytest
from django.db import IntegrityError, connection, transaction

from appliance.vault.actions import VaultError, create_data_key, destroy_data_key, rotate_kek
from appliance.vault.blobs import put, read
from appliance.vault.keys import FileKeyProvider, KeyProviderError, configured_provider, generate_kek_file
from appliance.vault.models import DataKey
from tests.vault.conftest import IMAGE, vault_records

pytestmark = pytest.mark.django_db


def raw_wrapped(key: DataKey) -> bytes:
    """The column as the database holds it, read past the ORM."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT wrapped FROM vault_datakey WHERE id = %s", [key.pk])
        return bytes(cursor.fetchone()[0])


def test_a_data_key_is_stored_only_wrapped_under_the_configured_kek(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    provider = configured_provider()
    stored = raw_wrapped(key)
    assert len(stored) == 40
    assert (key.kek_provider, key.kek_id) == ("file", provider.key_id)
    assert len(provider.unwrap(stored)) == 32
    assert create_data_key(purpose="dataset:2").wrapped_bytes() != stored


def test_creating_a_data_key_is_audited_without_key_bytes(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    [body] = vault_records()
    assert body["action"] == "vault.key.create"
    assert body["object"] == {"type": "data_key", "id": str(key.pk)}
    assert body["details"] == {"purpose": "dataset:1", "kek_provider": "file", "kek_id": key.kek_id}
    dek = configured_provider().unwrap(key.wrapped_bytes())
    assert dek.hex() not in str(body)
    assert key.wrapped_bytes().hex() not in str(body)


def test_a_data_key_shows_no_bytes_in_its_repr(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    shown = repr(key) + str(key)
    assert key.wrapped_bytes().hex() not in shown
    assert repr(key.wrapped_bytes()) not in shown
    assert "dataset:1" in shown


@pytest.mark.parametrize("purpose", ["", "   ", "x" * 201])
def test_a_data_key_needs_a_purpose(vault_dirs, purpose):
    with pytest.raises(VaultError):
        create_data_key(purpose=purpose)
    assert not DataKey.objects.exists()


def test_destroying_a_key_wipes_it_and_makes_its_blobs_unreadable_for_good(vault_dirs):
    """Crypto-shredding: the blob file is still there, byte for byte, and nothing can read it any more."""
    key = create_data_key(purpose="dataset:1")
    wrapped_before = key.wrapped_bytes()
    stored = put(key=key, identity=IMAGE, chunks=[os.urandom(5000)])

    destroy_data_key(key=key, reason="dataset deleted")

    row = DataKey.objects.get(pk=key.pk)
    assert raw_wrapped(row) == b""
    assert row.destroyed_at is not None
    with pytest.raises(VaultError, match="destroyed"):
        read(key=row, identity=IMAGE, blob_id=stored.blob_id)
    # Even someone who kept the row object from before cannot read through it: the store checks the state.
    with pytest.raises(VaultError, match="destroyed"):
        read(key=key, identity=IMAGE, blob_id=stored.blob_id)
    with pytest.raises(KeyProviderError):
        configured_provider().unwrap(raw_wrapped(row))
    assert wrapped_before  # only a copy taken before destruction still unwraps: hence KEK rotation afterwards


def test_destroying_a_key_is_audited_with_its_reason(vault_dirs):
    key = create_data_key(purpose="dataset:7")
    destroy_data_key(key=key, reason="dataset deleted by admin request 12")
    body = vault_records()[-1]
    assert body["action"] == "vault.key.destroy"
    assert body["object"] == {"type": "data_key", "id": str(key.pk)}
    assert body["details"] == {
        "purpose": "dataset:7",
        "kek_id": key.kek_id,
        "reason": "dataset deleted by admin request 12",
    }


def test_a_key_is_destroyed_once_and_needs_a_reason(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    with pytest.raises(VaultError, match="reason"):
        destroy_data_key(key=key, reason=" ")
    destroy_data_key(key=key, reason="gone")
    with pytest.raises(VaultError, match="already destroyed"):
        destroy_data_key(key=key, reason="again")
    assert [body["action"] for body in vault_records()] == ["vault.key.create", "vault.key.destroy"]


def test_the_database_refuses_a_live_key_without_bytes_or_a_destroyed_key_with_them(vault_dirs):
    key = create_data_key(purpose="dataset:1")
    with pytest.raises(IntegrityError), transaction.atomic():
        DataKey.objects.filter(pk=key.pk).update(wrapped=b"")
    with pytest.raises(IntegrityError), transaction.atomic():
        DataKey.objects.filter(pk=key.pk).update(destroyed_at=key.created_at)


def test_kek_rotation_rewraps_every_live_key_and_blobs_stay_readable(vault_dirs, file_kek, other_kek):
    keys = [create_data_key(purpose=f"dataset:{n}", provider=file_kek) for n in range(3)]
    payloads = [os.urandom(3000 + n) for n in range(3)]
    stored = [put(key=k, identity=IMAGE, chunks=[p], provider=file_kek) for k, p in zip(keys, payloads, strict=True)]
    destroy_data_key(key=keys[2], reason="dataset deleted")

    counts = rotate_kek(old=file_kek, new=other_kek)

    assert counts == {"rewrapped": 2, "already_current": 0, "destroyed": 1}
    for key, payload, blob in zip(keys[:2], payloads, stored, strict=False):
        key.refresh_from_db()
        assert (key.kek_provider, key.kek_id) == ("file", other_kek.key_id)
        assert key.rewrapped_at is not None
        assert read(key=key, identity=IMAGE, blob_id=blob.blob_id, provider=other_kek) == payload
        with pytest.raises(VaultError, match=f"wrapped under KEK {other_kek.key_id}"):
            read(key=key, identity=IMAGE, blob_id=blob.blob_id, provider=file_kek)
    keys[2].refresh_from_db()
    assert raw_wrapped(keys[2]) == b""
    assert keys[2].kek_id == file_kek.key_id


def test_kek_rotation_is_audited_with_key_ids_and_counts(vault_dirs, file_kek, other_kek):
    create_data_key(purpose="dataset:1", provider=file_kek)
    rotate_kek(old=file_kek, new=other_kek)
    body = vault_records()[-1]
    assert body["action"] == "vault.kek.rotate"
    assert body["object"] == {"type": "kek", "id": other_kek.key_id}
    assert body["details"] == {
        "old_kek_id": file_kek.key_id,
        "old_kek_provider": "file",
        "new_kek_id": other_kek.key_id,
        "new_kek_provider": "file",
        "rewrapped": 1,
        "already_current": 0,
        "destroyed": 0,
    }
    for kek in (file_kek, other_kek):
        assert kek.path.read_bytes().hex() not in str(body)


def test_running_a_rotation_again_catches_keys_created_under_the_old_kek_meanwhile(vault_dirs, file_kek, other_kek):
    create_data_key(purpose="dataset:1", provider=file_kek)
    rotate_kek(old=file_kek, new=other_kek)
    late = create_data_key(purpose="dataset:2", provider=file_kek)  # a process still configured with the old KEK
    assert rotate_kek(old=file_kek, new=other_kek) == {"rewrapped": 1, "already_current": 1, "destroyed": 0}
    late.refresh_from_db()
    assert late.kek_id == other_kek.key_id


def test_a_rotation_that_would_strand_a_key_under_a_third_kek_changes_nothing(
    vault_dirs, file_kek, other_kek, tmp_path
):
    third = FileKeyProvider(generate_kek_file(tmp_path / "kek-c"))
    mine = create_data_key(purpose="dataset:1", provider=file_kek)
    create_data_key(purpose="dataset:2", provider=third)
    records_before = len(vault_records())
    with pytest.raises(VaultError, match=third.key_id):
        rotate_kek(old=file_kek, new=other_kek)
    mine.refresh_from_db()
    assert mine.kek_id == file_kek.key_id
    assert len(vault_records()) == records_before


def test_a_rotation_to_the_same_kek_is_refused(vault_dirs, file_kek):
    with pytest.raises(VaultError, match="nothing to rotate"):
        rotate_kek(old=file_kek, new=file_kek)
