"""When the audit record cannot be written, the action fails closed: 503, nothing of it kept, and a CRITICAL alert.

STIG: V-222486 (shut down / refuse on audit failure), V-222484 and V-222485 (alert the SA and ISSO on an audit
processing failure). The failure is real: a trigger installed for the test makes the database refuse every
insert into the audit table, exactly as a full or broken audit store would, and a real request drives a real
audited action into it. Nothing of the project is mocked.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from appliance.accounts.models import ApiToken
from appliance.auditlog.failure import audit_failure
from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import AuditWriteError, record
from appliance.datasets.models import Dataset
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

REFUSAL = "audit store refuses writes (test)"
DATASET = {"name": "coastal survey", "description": "x", "classification": "SECRET", "compartments": ["BRAVO"]}


def _install_refusal() -> list[str]:
    if connection.vendor == "sqlite":
        return [
            "CREATE TRIGGER h7_refuse_audit_insert BEFORE INSERT ON auditlog_auditrecord "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        ]
    return [
        "CREATE FUNCTION h7_refuse_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$",
        "CREATE TRIGGER h7_refuse_audit_insert BEFORE INSERT ON auditlog_auditrecord "
        "FOR EACH ROW EXECUTE FUNCTION h7_refuse_audit_insert()",
    ]


def _remove_refusal() -> list[str]:
    if connection.vendor == "sqlite":
        return ["DROP TRIGGER IF EXISTS h7_refuse_audit_insert"]
    return [
        "DROP TRIGGER IF EXISTS h7_refuse_audit_insert ON auditlog_auditrecord",
        "DROP FUNCTION IF EXISTS h7_refuse_audit_insert()",
    ]


def _critical_alerts(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "appliance.audit" and r.levelno == logging.CRITICAL]


def test_an_api_action_whose_record_cannot_be_written_is_refused_with_503_and_leaves_nothing(
    client: Client, manager, caplog: pytest.LogCaptureFixture
) -> None:
    """V-222486: POST /api/datasets/ answers 503 and no dataset exists; V-222484/V-222485: one CRITICAL alert
    naming the action, without the refused row's values."""
    sign_in(client, manager)
    before = AuditRecord.objects.count()
    with caplog.at_level(logging.CRITICAL, logger="appliance.audit"), _refusing():
        response = client.post("/api/datasets/", data=json.dumps(DATASET), content_type="application/json")
    assert response.status_code == 503
    assert response.json()["code"] == "audit_unavailable"
    assert response["Retry-After"] == "60"
    assert not Dataset.objects.filter(name=DATASET["name"]).exists()
    assert AuditRecord.objects.count() == before
    alerts = _critical_alerts(caplog)
    assert len(alerts) == 1
    message = alerts[0].getMessage()
    assert "dataset.create" in message
    assert "POST /api/datasets/" in message
    assert REFUSAL not in message  # the database's text may quote the refused row: never in the alert
    assert DATASET["name"] not in message


def test_a_page_action_whose_record_cannot_be_written_is_refused_with_503_and_leaves_nothing(
    client: Client, analyst, caplog: pytest.LogCaptureFixture
) -> None:
    """V-222486 through the page middleware: creating an API token on its page answers 503, and no token (whose
    secret would otherwise have been shown once) exists. V-222484/V-222485: the CRITICAL alert names the action."""
    sign_in(client, analyst)
    with caplog.at_level(logging.CRITICAL, logger="appliance.audit"), _refusing():
        response = client.post("/accounts/tokens", {"name": "nightly", "lifetime_days": 5})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert b"audit record could not be written" in response.content
    assert not ApiToken.objects.filter(user=analyst).exists()
    alerts = _critical_alerts(caplog)
    assert len(alerts) == 1
    assert "POST /accounts/tokens" in alerts[0].getMessage()
    assert "token" in alerts[0].getMessage()


def test_the_same_requests_succeed_once_the_audit_store_accepts_writes_again(client: Client, manager) -> None:
    """The control case for V-222486: nothing but the refused audit write made the request fail."""
    sign_in(client, manager)
    with _refusing():
        assert client.post("/api/datasets/", json.dumps(DATASET), content_type="application/json").status_code == 503
    response = client.post("/api/datasets/", data=json.dumps(DATASET), content_type="application/json")
    assert response.status_code == 201
    assert AuditRecord.objects.filter(action="dataset.create", object_id=str(response.json()["id"])).exists()


def test_only_failures_of_the_audit_append_are_classified_as_audit_failures() -> None:
    """V-222486 must not turn every database error into an audit failure: an error raised outside `record()` is
    not one, the same kind of error raised inside it is, and so is AuditWriteError itself."""
    with pytest.raises(DatabaseError) as elsewhere, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM h7_no_such_table")
    assert audit_failure(elsewhere.value) is None

    with _refusing(), pytest.raises(DatabaseError) as inside, transaction.atomic():
        record(action="probe.write")
    failure = audit_failure(inside.value)
    assert failure is not None
    assert failure.action == "probe.write"

    with pytest.raises(AuditWriteError) as refused:
        record(action="probe.secret", details={"password": "x"})
    assert audit_failure(refused.value) is not None


class _refusing:
    """Install the refusing trigger for the duration of a `with` block, inside the test's transaction."""

    def __enter__(self) -> None:
        with connection.cursor() as cursor:
            for statement in _install_refusal():
                cursor.execute(statement)

    def __exit__(self, *exc: object) -> None:
        with connection.cursor() as cursor:
            for statement in _remove_refusal():
                cursor.execute(statement)
