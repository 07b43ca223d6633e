"""`record()`: same transaction as the action, fail closed, dense sequence, every required field.

STIG: V-222473..V-222478 (content of audit records), V-222486 (no action when its audit record cannot be written),
V-222444 (no secrets in the log).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib.sessions.models import Session
from django.db import transaction

from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import AuditWriteError, record, record_on_its_own
from tests.auditlog.helpers import all_seqs, body_of, write_session_row

pytestmark = pytest.mark.django_db

TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
CONTEXT = AuditContext(
    component="web",
    actor="ana",
    roles=("reviewer", "analyst"),
    session="sess-0001",
    request_id="req-0123456789",
    client_ip="10.20.30.40",
)


class Refused(Exception):
    """Raised by a test action after its record was written, to roll the whole transaction back."""


def recorded_then_refused(key: str) -> None:
    """An action that writes, records itself, then fails: all in one transaction."""
    with transaction.atomic():
        write_session_row(key)
        record(action="session.test", object_type="session", object_id=key)
        raise Refused


def audited_write(key: str, details: dict[str, object]) -> None:
    with transaction.atomic():
        write_session_row(key)
        record(action="session.test", object_type="session", object_id=key, details=details)


def test_a_record_rolls_back_with_the_action_that_raised():
    """Record and action share one transaction: if the action fails after recording, neither remains (V-222486)."""
    with pytest.raises(Refused):
        recorded_then_refused("rolled-back")
    assert not Session.objects.filter(session_key="rolled-back").exists()
    assert AuditRecord.objects.count() == 0


@pytest.mark.parametrize(
    "details",
    [
        pytest.param({"password": "hunter2"}, id="password-key"),
        pytest.param({"user": {"new_password": "x"}}, id="nested-secret-key"),
        pytest.param({"changes": [{"secret": "x"}]}, id="secret-key-inside-a-list"),
        pytest.param({"ratio": 0.5}, id="float"),
        pytest.param({"count": 2**60}, id="unsafe-integer"),
        pytest.param({"blob": b"\x00"}, id="bytes"),
    ],
)
def test_a_failing_audit_write_aborts_the_action(details):
    """Fail closed (V-222486): the audit write raises, so nothing of the action persists. Secret-looking keys are
    refused at any depth (V-222444), floats and unsafe integers have no canonical form."""
    with pytest.raises(AuditWriteError):
        audited_write("must-not-persist", details)
    assert not Session.objects.filter(session_key="must-not-persist").exists()
    assert AuditRecord.objects.count() == 0


def test_an_unknown_outcome_is_refused():
    """Outcome is one of ok / denied / error, so auditors can search it (V-222477)."""
    with pytest.raises(AuditWriteError), transaction.atomic():
        record(action="session.test", outcome="maybe")


def test_seq_is_dense_from_zero():
    """Gap-free numbering is what lets the verifier notice a deleted record."""
    for index in range(60):
        with transaction.atomic():
            record(action="session.test", object_id=index)
    assert all_seqs() == list(range(60))
    assert [body_of(row)["seq"] for row in AuditRecord.objects.all()] == list(range(60))


def test_a_rolled_back_record_leaves_no_gap():
    with transaction.atomic():
        record(action="session.test")
    with pytest.raises(Refused):
        recorded_then_refused("second")
    with transaction.atomic():
        record(action="session.test")
    assert all_seqs() == [0, 1]


def test_every_record_says_what_when_where_source_outcome_and_who():
    """V-222473 what, V-222474 when (UTC), V-222475 where, V-222476 source, V-222477 outcome, V-222478 who."""
    before = datetime.now(UTC)
    with audit_context(CONTEXT), transaction.atomic():
        write_session_row("abc")
        row = record(
            action="session.test", object_type="session", object_id="abc", label="SECRET//ALPHA", details={"n": 1}
        )
    body = body_of(row)
    assert body["action"] == "session.test"
    assert TIME_FORMAT.match(body["time"])
    moment = datetime.strptime(body["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert before <= moment <= datetime.now(UTC)
    assert row.time == moment
    assert body["component"] == "web"
    assert body["object"] == {"type": "session", "id": "abc"}
    assert body["label"] == "SECRET//ALPHA"
    assert body["client_ip"] == "10.20.30.40"
    assert body["request_id"] == "req-0123456789"
    assert body["session"] == "sess-0001"
    assert body["outcome"] == "ok"
    assert body["actor"] == "ana"
    assert body["roles"] == ["analyst", "reviewer"]
    assert body["details"] == {"n": 1}
    # The indexed columns are copies of the record (searched by auditors).
    assert (row.actor, row.action, row.outcome, row.object_type, row.object_id, row.label) == (
        "ana",
        "session.test",
        "ok",
        "session",
        "abc",
        "SECRET//ALPHA",
    )
    assert (row.client_ip, row.request_id) == ("10.20.30.40", "req-0123456789")


def test_an_explicit_actor_overrides_the_context():
    """Events about someone not (yet) signed in, such as a failed login, name that person (V-222478)."""
    with audit_context(CONTEXT), transaction.atomic():
        row = record(action="login.failed", outcome="denied", actor="mallory", roles=[])
    body = body_of(row)
    assert (body["actor"], body["roles"], body["outcome"]) == ("mallory", [], "denied")


def test_a_denial_cannot_be_recorded_inside_the_refused_transaction():
    """A denial inside the refused action's transaction would vanish with its rollback, so it is refused."""
    with pytest.raises(AuditWriteError), transaction.atomic():
        record_on_its_own(action="access.denied", outcome="denied")


def test_record_times_never_decrease_with_seq():
    for _ in range(20):
        with transaction.atomic():
            record(action="session.test")
    times = list(AuditRecord.objects.order_by("seq").values_list("time", flat=True))
    assert times == sorted(times)
