"""The audit signing key: its own 0600 file, never generated in production, and rotated without breaking the chain.

STIG: V-222507 (the key that protects the audit log's integrity is kept apart from data keys, guarded, and can be
replaced: a rotation is announced in a checkpoint signed by the old and the new key, so a verifier follows it).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from appliance.auditlog.checkpoints import make_checkpoint, newest
from appliance.auditlog.export import export_bundle
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record
from appliance.auditlog.signing import KEY_FILE, key_path, known_verifier_keys, load_signing_key
from appliance.auditlog.verification import verify_log
from appliance.lib.config import ConfigError
from audit.bundle import verify_bundle
from audit.checkpoint import open_checkpoint
from tests.auditlog.helpers import body_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path: Path) -> Path:
    settings.KEY_DIR = tmp_path / "keys"
    return settings.KEY_DIR


def append(count: int) -> None:
    for _ in range(count):
        with transaction.atomic():
            record(action="session.test")


def test_development_generates_the_key_once_mode_0600(key_dir):
    key = load_signing_key()
    path = key_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert load_signing_key().verifier == key.verifier


def test_production_never_generates_a_key(settings, key_dir):
    settings.PRODUCTION = True
    with pytest.raises(ConfigError, match=str(key_dir / KEY_FILE)) as failure:
        load_signing_key()
    assert "never generates" in str(failure.value)
    assert not (key_dir / KEY_FILE).exists()


def test_production_refuses_a_key_others_can_read(settings, key_dir):
    load_signing_key()
    settings.PRODUCTION = True
    (key_dir / KEY_FILE).chmod(0o644)
    with pytest.raises(ConfigError, match=f"{key_dir / KEY_FILE} is accessible to other users"):
        load_signing_key()


def test_a_damaged_key_file_is_named_without_its_contents(key_dir):
    load_signing_key()
    (key_dir / KEY_FILE).write_text("-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="is not a PEM PKCS#8 key") as failure:
        load_signing_key()
    assert "not-a-key" not in str(failure.value)


@pytest.fixture
def rotated(capsys) -> tuple[str, str]:
    append(3)
    make_checkpoint(force=True)
    old = load_signing_key().verifier
    old_pem = key_path().read_text()
    call_command("audit", "rotate-key")
    assert "audit signing key rotated" in capsys.readouterr().out
    assert old_pem != key_path().read_text(), "the old private key is replaced (destroyed)"
    return old.key_id, load_signing_key().verifier.key_id


def test_rotation_is_announced_by_a_checkpoint_signed_by_both_keys(rotated):
    old_id, new_id = rotated
    assert old_id != new_id
    row = newest()
    signed = open_checkpoint(row.note, known_verifier_keys())
    assert set(signed.signers) == {old_id, new_id}
    assert signed.checkpoint.rotate_to is not None
    assert signed.checkpoint.rotate_to.key_id == new_id
    assert row.size == AuditRecord.objects.count(), "the rotation checkpoint covers its own audit record"


def test_rotation_is_audited_with_key_ids_only(rotated):
    old_id, new_id = rotated
    row = AuditRecord.objects.get(action="audit.key_rotated")
    body = body_of(row)
    assert body["details"] == {"old_key_id": old_id, "new_key_id": new_id}
    assert body["component"] == "cli"
    assert "PRIVATE" not in row.canonical


def test_after_rotation_new_checkpoints_use_the_new_key_and_everything_verifies(rotated, tmp_path):
    old_id, new_id = rotated
    append(2)
    make_checkpoint(force=True)
    assert newest().key_id == new_id
    assert set(AuditCheckpoint.objects.values_list("key_id", flat=True)) == {old_id, new_id}
    assert verify_log().ok
    bundle = export_bundle(tmp_path / "bundle")
    assert [line.split("+")[1] for line in (bundle / "keys.txt").read_text().splitlines()] == [
        old_id.split("+")[1],
        new_id.split("+")[1],
    ]
    report = verify_bundle(bundle)
    assert report.signers == {old_id, new_id}


def test_the_old_public_key_stays_known(rotated):
    old_id, new_id = rotated
    assert set(known_verifier_keys()) == {old_id, new_id}
