"""The start-up self-check of the audit log (V-222616): the newest checkpoint and the tail, in O(tail).

On failure the process raises an alert (CRITICAL on `appliance.audit`), records `audit.selfcheck` with outcome
`error`, and in production refuses to start. The checks of the tail are those of V-222501/V-222502.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from appliance.auditlog.checkpoints import make_checkpoint
from appliance.auditlog.models import AuditCheckpoint, AuditRecord, AuditStaged
from appliance.auditlog.recorder import record
from appliance.auditlog.sequencer import stage
from appliance.auditlog.signing import KEY_FILE
from appliance.lib.config import ConfigError
from appliance.startup import AuditSelfCheckFailed, run_startup_checks
from audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from tests.auditlog.helpers import body_of, triggers_lifted

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path: Path) -> Path:
    settings.KEY_DIR = tmp_path / "keys"
    return settings.KEY_DIR


@pytest.fixture
def log() -> None:
    for index in range(6):
        with transaction.atomic():
            record(action="session.test", details={"i": index})
        if index == 3:
            make_checkpoint(force=True)  # covers 0..3; 4 and 5 are the tail


@pytest.fixture
def without_triggers(log) -> Iterator[None]:
    with triggers_lifted():
        yield


def selfcheck_records() -> list[dict]:
    return [body_of(row) for row in AuditRecord.objects.filter(action="audit.selfcheck")]


@pytest.mark.usefixtures("log")
def test_a_sound_log_is_recorded_as_checked_before_anything_else_is_appended():
    run_startup_checks(component="web")
    [check] = selfcheck_records()
    assert (check["outcome"], check["seq"]) == ("ok", 6)
    assert check["details"] == {"checked": 2, "checkpoints": 1}
    assert AuditRecord.objects.get(seq=7).action == "policy.load"


@pytest.mark.usefixtures("log")
def test_the_self_check_reads_only_the_tail():
    with CaptureQueriesContext(connection) as queries:
        run_startup_checks(component="web")
    reads = [q["sql"] for q in queries.captured_queries if "canonical" in q["sql"] and "SELECT" in q["sql"]]
    assert reads
    assert all(">= 4" in sql for sql in reads), reads


def edit_tail() -> None:
    AuditRecord.objects.filter(seq=5).update(canonical='{"forged":true}')


def forge_right_edge() -> None:
    AuditCheckpoint.objects.filter(size=4).update(right_edge='["' + "A" * 43 + '="]')


def foreign_newest() -> None:
    row = AuditCheckpoint.objects.get(size=4)
    other = SigningKey.generate(row.note.split("\n", 1)[0])
    note = sign_checkpoint(
        Checkpoint(origin=row.note.split("\n", 1)[0], size=4, root=bytes(row.root_hash), time=row.time), other
    )
    AuditCheckpoint.objects.filter(size=4).update(note=note, key_id=other.verifier.key_id)


def truncate_covered() -> None:
    AuditRecord.objects.filter(seq__gte=2).delete()


FAILURES = {
    "edited-tail-record": (edit_tail, "record 5: leaf hash does not match"),
    "forged-right-edge": (
        forge_right_edge,
        "checkpoint of size 4: its stored right edge does not give its signed root",
    ),
    "newest-signed-by-another-key": (foreign_newest, "checkpoint of size 4: checkpoint of size 4 is not signed"),
    "covered-records-removed": (truncate_covered, "checkpoint of size 4: covers records beyond the log's end (2)"),
}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.usefixtures("without_triggers")
def test_a_failed_self_check_alerts_and_is_recorded(failure, caplog):
    tamper, message = failure
    tamper()
    with caplog.at_level(logging.CRITICAL, logger="appliance.audit"):
        run_startup_checks(component="web")
    assert f"audit log self-check FAILED at {message}" in caplog.text
    [check] = selfcheck_records()
    assert check["outcome"] == "error"
    assert message.split(": ", 1)[-1] in check["details"]["problem"]


@pytest.mark.usefixtures("without_triggers")
def test_production_refuses_to_start_on_a_failed_self_check(settings):
    edit_tail()
    settings.PRODUCTION = True
    with pytest.raises(AuditSelfCheckFailed, match="record 5: leaf hash"):
        run_startup_checks(component="web")
    assert not AuditRecord.objects.filter(action="policy.load").exists()


@pytest.mark.usefixtures("log")
def test_production_refuses_to_start_without_its_signing_key(settings, key_dir, caplog):
    (key_dir / KEY_FILE).unlink()
    settings.PRODUCTION = True
    with caplog.at_level(logging.CRITICAL, logger="appliance.audit"), pytest.raises(AuditSelfCheckFailed):
        run_startup_checks(component="web")
    assert str(key_dir / KEY_FILE) in caplog.text


@pytest.mark.usefixtures("log")
def test_records_left_staged_by_a_killed_process_are_sequenced_at_start_up():
    """A process killed between its commit and sequencing leaves its record staged, never lost (V-222486)."""
    body = {key: value for key, value in body_of(AuditRecord.objects.get(seq=5)).items() if key not in ("seq", "time")}
    with transaction.atomic():
        stage({**body, "action": "session.orphaned"})
    run_startup_checks(component="web")
    assert not AuditStaged.objects.exists()
    orphan = AuditRecord.objects.get(action="session.orphaned")
    assert orphan.seq == 7  # after the self-check's record: checked first, then appended to
    assert "occurred" in body_of(orphan)


@pytest.mark.usefixtures("log")
def test_start_up_warns_when_the_audit_log_nears_its_storage_budget(settings, caplog):
    """V-222483: at 75% of the configured audit storage budget the operators are warned, and it is recorded."""
    settings.AUDIT_STORAGE_BUDGET_MB = 1
    with transaction.atomic():
        # Random text: PostgreSQL compresses what it stores, and a repeated character would shrink to nothing.
        record(action="session.test", details={"padding": secrets.token_urlsafe(700_000)})
    with caplog.at_level(logging.WARNING, logger="appliance.audit"):
        run_startup_checks(component="web")
    assert "AUDIT STORAGE" in caplog.text
    [warning] = [body_of(row) for row in AuditRecord.objects.filter(action="audit.storage_warning")]
    assert warning["details"]["percent"] >= 75


@pytest.mark.usefixtures("log")
def test_production_refuses_to_start_without_its_vault_kek(settings, tmp_path):
    """A missing KEK stops start-up naming the setting, instead of failing on the first image (V-222616)."""
    settings.PRODUCTION = True
    settings.VAULT_KEK_FILE = tmp_path / "no-such-kek"
    with pytest.raises(ConfigError, match=r"vault\.kek_file"):
        run_startup_checks(component="web")
    assert not (tmp_path / "no-such-kek").exists()


@pytest.mark.usefixtures("log")
def test_start_up_sweeps_partial_blobs_a_killed_writer_left(settings):
    partial = Path(settings.VAULT_BLOB_DIR) / "ab" / "cd" / ("abcd" + "0" * 28 + ".partial")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"ciphertext")
    old = time.time() - 2 * 3600
    os.utime(partial, (old, old))
    run_startup_checks(component="web")
    assert not partial.exists()
