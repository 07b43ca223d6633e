"""`manage.py audit verify` passes on a good log and names the first bad record of a tampered one.

Tampering needs the append-only triggers out of the way, as a database superuser could do; they are dropped inside
the test's transaction (DDL is transactional on SQLite and PostgreSQL), so its rollback puts them back.
STIG: V-222473..V-222478 (the records' content is what is checked), protection of audit information.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from audit.encoding import leaf_hash
from tests.auditlog.helpers import triggers_lifted

pytestmark = pytest.mark.django_db

RECORDS = 5
VICTIM = 2


@pytest.fixture
def log() -> None:
    for index in range(RECORDS):
        with transaction.atomic():
            record(action="session.test", object_type="session", object_id=index, details={"i": index})


@pytest.fixture
def without_triggers(log):
    with triggers_lifted():
        yield


def _rewrite(canonical: str, *, rehash: bool) -> None:
    """Replace the victim's canonical text; with `rehash`, also its leaf hash, as a careful forger would."""
    values: dict[str, object] = {"canonical": canonical}
    if rehash:
        values["leaf_hash"] = leaf_hash(canonical.encode())
    AuditRecord.objects.filter(seq=VICTIM).update(**values)


def _victim() -> AuditRecord:
    return AuditRecord.objects.get(seq=VICTIM)


TAMPERS: dict[str, tuple[Callable[[], None], str]] = {
    "canonical-text": (lambda: _rewrite(_victim().canonical.replace('"ok"', '"error"'), rehash=False), "leaf hash"),
    "leaf-hash": (lambda: AuditRecord.objects.filter(seq=VICTIM).update(leaf_hash=b"\x00" * 32), "leaf hash"),
    "indexed-actor-column": (lambda: AuditRecord.objects.filter(seq=VICTIM).update(actor="mallory"), "actor"),
    "indexed-action-column": (lambda: AuditRecord.objects.filter(seq=VICTIM).update(action="login"), "action"),
    "indexed-time-column": (
        lambda: AuditRecord.objects.filter(seq=VICTIM).update(time=_victim().time - timedelta(days=1)),
        "time",
    ),
    "rehashed-non-canonical-text": (
        lambda: _rewrite(_victim().canonical.replace('"action"', ' "action"'), rehash=True),
        "canonical form",
    ),
    "rehashed-float": (lambda: _rewrite(_victim().canonical.replace('"i":2', '"i":2.5'), rehash=True), "canonical"),
    "rehashed-not-an-object": (lambda: _rewrite("[]", rehash=True), "not an audit record"),
    "rehashed-wrong-seq": (lambda: _rewrite(_victim().canonical.replace('"seq":2', '"seq":7'), rehash=True), "seq 7"),
    "deleted-middle-row": (lambda: AuditRecord.objects.filter(seq=VICTIM).delete(), "expected record 2, found 3"),
}


@pytest.mark.usefixtures("log")
def test_verify_passes_on_a_good_log(capsys):
    call_command("audit", "verify")
    assert f"audit log OK: {RECORDS} records" in capsys.readouterr().out


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
@pytest.mark.usefixtures("without_triggers")
def test_verify_names_the_tampered_record(tamper):
    change, problem = tamper
    change()
    with pytest.raises(CommandError, match=r"FAILED at record \d+") as failure:
        call_command("audit", "verify")
    message = str(failure.value)
    assert problem in message
    assert f"record {VICTIM}" in message
