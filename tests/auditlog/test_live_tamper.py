"""Tampering past the triggers is caught against the signed checkpoints, live and in an exported bundle.

Each attack is what a database superuser could do after dropping the append-only triggers (lifted here inside
the test's transaction; its rollback puts them back). Every one must be detected twice: by `manage.py audit
verify` on the live database, and by the auditor's offline verifier on a bundle exported afterwards; and the
message must name the record or checkpoint. A log rebuilt end to end under a new key is the one attack that
verifies on its own: it is caught only against a checkpoint the auditor kept off the appliance.

STIG: V-222507 (cryptographic integrity of audit information), V-222501 / V-222502 (modification / deletion of
audit records detected), V-222481 (off-loaded records verifiable elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from appliance.auditlog.checkpoints import make_checkpoint
from appliance.auditlog.export import export_bundle
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record
from appliance.auditlog.signing import key_path
from appliance.auditlog.verification import verify_log
from audit.bundle import BundleError, TrustedCheckpoint, verify_bundle
from audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from audit.encoding import canonical_json, leaf_hash
from tests.auditlog.helpers import triggers_lifted

pytestmark = pytest.mark.django_db

RECORDS = 12
EVERY = 4  # checkpoints at 4, 8 and 12
VICTIM = 5  # inside the range of the checkpoint of size 8


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path: Path) -> Path:
    """Each test signs with a key of its own, generated under a temporary KEY_DIR (development mode)."""
    settings.KEY_DIR = tmp_path / "keys"
    return settings.KEY_DIR


def append(count: int) -> None:
    for _ in range(count):
        with transaction.atomic():
            seq = AuditRecord.objects.count()
            record(action="session.test", object_type="session", object_id=seq, details={"i": seq})


@pytest.fixture
def log() -> None:
    for _ in range(RECORDS // EVERY):
        append(EVERY)
        make_checkpoint(force=True)


@pytest.fixture
def without_triggers(log) -> Iterator[None]:
    with triggers_lifted():
        yield


def body(seq: int) -> dict:
    return json.loads(AuditRecord.objects.get(seq=seq).canonical)


def store(seq: int, new_body: dict, *, source: AuditRecord | None = None) -> None:
    """Write `new_body` as record `seq` the way a careful forger would: canonical, rehashed, columns agreeing."""
    canonical = canonical_json(new_body)
    columns = {}
    if source is not None:
        columns = {f: getattr(source, f) for f in ("time", "actor", "action", "outcome", "object_type", "object_id")}
    AuditRecord.objects.filter(seq=seq).update(canonical=canonical.decode(), leaf_hash=leaf_hash(canonical), **columns)


def edit_record() -> None:
    store(VICTIM, {**body(VICTIM), "details": {"i": 999}})


def delete_record() -> None:
    AuditRecord.objects.filter(seq=VICTIM).delete()


def insert_record() -> None:
    """Shift records VICTIM.. up by one (renumbered, rehashed) and slip a forged record in at VICTIM."""
    for seq in range(AuditRecord.objects.count() - 1, VICTIM - 1, -1):
        AuditRecord.objects.filter(seq=seq).update(seq=seq + 1)
        store(seq + 1, {**body(seq + 1), "seq": seq + 1})
    template = AuditRecord.objects.get(seq=VICTIM - 1)
    forged = {**body(VICTIM - 1), "seq": VICTIM, "action": "session.forged"}
    canonical = canonical_json(forged)
    AuditRecord.objects.create(
        seq=VICTIM,
        time=template.time,
        actor=template.actor,
        action="session.forged",
        outcome=template.outcome,
        object_type=template.object_type,
        object_id=template.object_id,
        canonical=canonical.decode(),
        leaf_hash=leaf_hash(canonical),
    )


def reorder_records() -> None:
    first, second = AuditRecord.objects.get(seq=VICTIM), AuditRecord.objects.get(seq=VICTIM + 1)
    first_body, second_body = body(VICTIM), body(VICTIM + 1)
    store(VICTIM, {**second_body, "seq": VICTIM}, source=second)
    store(VICTIM + 1, {**first_body, "seq": VICTIM + 1}, source=first)


def truncate_tail() -> None:
    AuditRecord.objects.filter(seq__gte=RECORDS - 2).delete()


def replay_checkpoint() -> None:
    """Append two records, then pass the (genuine, signed) checkpoint of size 4 off as the newest."""
    append(2)
    old = AuditCheckpoint.objects.get(size=EVERY)
    AuditCheckpoint.objects.create(
        size=RECORDS + 2,
        root_hash=old.root_hash,
        time=old.time,
        key_id=old.key_id,
        note=old.note,
        right_edge=old.right_edge,
    )


def foreign_signature() -> None:
    """Re-sign the checkpoint of size 8 with another key of the same name (right size, root and time)."""
    row = AuditCheckpoint.objects.get(size=2 * EVERY)
    other = SigningKey.generate(settings.APPLIANCE_ID)
    note = sign_checkpoint(
        Checkpoint(origin=settings.APPLIANCE_ID, size=row.size, root=bytes(row.root_hash), time=row.time), other
    )
    AuditCheckpoint.objects.filter(size=row.size).update(note=note, key_id=other.verifier.key_id)


# tamper, what the live verifier says, what the bundle verifier says
TAMPERS: dict[str, tuple[Callable[[], None], str, str]] = {
    "edit-record": (
        edit_record,
        "checkpoint of size 8: signed root does not match records 4..7",
        "checkpoint of size 8 (00000000000000000008.note): signed root does not match records 4..7",
    ),
    "delete-record": (
        delete_record,
        f"record {VICTIM + 1}: sequence gap: expected record {VICTIM}",
        f"record {VICTIM} is missing",
    ),
    "insert-record-mid-log": (
        insert_record,
        "checkpoint of size 8: signed root does not match records 4..7",
        "checkpoint of size 8 (00000000000000000008.note): signed root does not match records 4..7",
    ),
    "reorder-two-records": (
        reorder_records,
        f"record {VICTIM + 1}: time is earlier than the record before it",
        f"record {VICTIM + 1}: time",
    ),
    "truncate-tail": (
        truncate_tail,
        "checkpoint of size 12: covers records beyond the log's end (10)",
        "checkpoint 00000000000000000012.note covers records beyond the bundle's end",
    ),
    "replay-older-checkpoint": (
        replay_checkpoint,
        "checkpoint of size 14: its note is for size 4",
        "checkpoint of size 4 (00000000000000000014.note): out of order or replayed",
    ),
    "checkpoint-signed-by-another-key": (
        foreign_signature,
        "checkpoint of size 8: checkpoint of size 8 is not signed by a trusted key",
        "checkpoint 00000000000000000008.note: checkpoint of size 8 is not signed by a trusted key",
    ),
}


@pytest.mark.usefixtures("log")
def test_an_untouched_log_verifies_live_and_exported(tmp_path):
    call_command("audit", "verify")
    report = verify_bundle(export_bundle(tmp_path / "bundle"))
    assert (report.records, report.checkpoints) == (RECORDS + 1, RECORDS // EVERY + 1)


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
@pytest.mark.usefixtures("without_triggers")
def test_live_verify_names_the_tampered_record_or_checkpoint(tamper):
    """V-222501/V-222502/V-222507: `manage.py audit verify` on the live database."""
    change, live_message, _ = tamper
    change()
    with pytest.raises(CommandError) as failure:
        call_command("audit", "verify")
    assert f"FAILED at {live_message}" in str(failure.value)


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
@pytest.mark.usefixtures("without_triggers")
def test_exported_bundle_names_the_tampered_record_or_checkpoint(tamper, tmp_path):
    """V-222481/V-222507: the log, tampered, is still exported as it is, and the offline verifier says what."""
    change, _, bundle_message = tamper
    change()
    bundle = export_bundle(tmp_path / "bundle")
    with pytest.raises(BundleError) as failure:
        verify_bundle(bundle)
    assert bundle_message in str(failure.value)


def rebuild_with_new_key() -> None:
    """Everything a full owner of the appliance can do: a new key, an edited record, every checkpoint re-signed."""
    key_path().unlink()  # development mode generates a fresh key on the next checkpoint
    edit_record()
    AuditCheckpoint.objects.all().delete()
    make_checkpoint(force=True)


@pytest.mark.usefixtures("without_triggers")
def test_a_log_rebuilt_under_a_new_key_is_caught_only_by_a_kept_checkpoint(tmp_path):
    """V-222507: a consistent forgery verifies by itself; the checkpoint the auditor kept exposes it."""
    first = verify_bundle(export_bundle(tmp_path / "first"))
    assert first.newest is not None
    kept = TrustedCheckpoint(note=first.newest.note, keys=list(first.trusted_keys.values()))
    kept.save(tmp_path / "kept.json")
    kept = TrustedCheckpoint.load(tmp_path / "kept.json")

    rebuild_with_new_key()

    assert verify_log().ok, "without a kept checkpoint, the live log verifies: the limit the docs state"
    live = verify_log(trusted=kept)
    assert not live.ok
    assert "not consistent with the trusted checkpoint of size 13" in live.describe()
    with pytest.raises(CommandError, match="trusted checkpoint of size 13"):
        call_command("audit", "verify", "--trusted-checkpoint", str(tmp_path / "kept.json"))

    second = export_bundle(tmp_path / "second")
    verify_bundle(second)  # passes: the bundle is consistent with the key it names first
    # With the kept checkpoint, only the keys trusted then are trusted: the new key's first signature fails.
    with pytest.raises(BundleError, match=r"13\.note: checkpoint of size 13 is not signed by a trusted key"):
        verify_bundle(second, trusted=kept)


def test_the_bundle_format_says_a_rebuilt_log_needs_a_kept_checkpoint():
    text = (Path(settings.BASE_DIR) / "docs" / "formats" / "audit-bundle.md").read_text()
    assert "rebuild the whole log" in text
    assert "--trusted-checkpoint" in text


@pytest.mark.usefixtures("without_triggers")
def test_records_after_the_newest_checkpoint_are_still_checked_one_by_one():
    """Beyond the newest checkpoint no signature covers a record yet; the leaf hash still names it (V-222501)."""
    append(2)
    AuditRecord.objects.filter(seq=RECORDS + 1).update(canonical=body(RECORDS + 1).__repr__())
    result = verify_log()
    assert (result.ok, result.bad_seq) == (False, RECORDS + 1)


def test_time_column_edit_is_named(log, without_triggers):
    AuditRecord.objects.filter(seq=VICTIM).update(time=AuditRecord.objects.get(seq=VICTIM).time - timedelta(days=1))
    result = verify_log()
    assert result.bad_seq == VICTIM
