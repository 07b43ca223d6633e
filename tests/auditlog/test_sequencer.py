"""Staged appends: a record that finds the append lock taken is staged in its action's transaction and sequenced
right after, dense and in time order, and nothing staged is ever left behind (V-222486: no action without its
record; V-222474: time order; V-222501: the log cannot be changed, staged records included)."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from appliance.auditlog.models import AuditRecord, AuditStaged
from appliance.auditlog.recorder import record
from appliance.auditlog.sequencer import StagedRecordDamaged, after_staging_commit, drain_staged, stage
from appliance.auditlog.verification import verify_log
from tests.auditlog.helpers import all_seqs, body_of, write_session_row
from tests.conftest import needs_postgres

BODY = {
    "v": 1,
    "component": "web",
    "actor": "ana",
    "roles": ["analyst"],
    "session": "",
    "token": "",
    "request_id": "",
    "client_ip": None,
    "action": "session.test",
    "object": {"type": "session", "id": "k"},
    "label": "",
    "outcome": "ok",
    "details": {},
}


@pytest.mark.django_db
def test_draining_puts_staged_records_in_the_log_in_staging_order_with_when_they_occurred():
    with transaction.atomic():
        record(action="first")
    with transaction.atomic():
        for key in ("a", "b", "c"):
            stage({**BODY, "object": {"type": "session", "id": key}})
    assert AuditStaged.objects.count() == 3

    assert drain_staged() == 3

    assert AuditStaged.objects.count() == 0
    rows = list(AuditRecord.objects.order_by("seq"))
    assert [row.seq for row in rows] == [0, 1, 2, 3]
    assert [row.object_id for row in rows[1:]] == ["a", "b", "c"]
    bodies = [body_of(row) for row in rows[1:]]
    assert all(body["occurred"] <= body["time"] for body in bodies)
    assert [body["time"] for body in bodies] == sorted(body["time"] for body in bodies)
    assert verify_log().ok


@pytest.mark.django_db
def test_a_staged_record_cannot_be_changed():
    with transaction.atomic():
        stage(BODY)
    staged = AuditStaged.objects.get()
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        AuditStaged.objects.filter(pk=staged.pk).update(body=json.dumps({**BODY, "actor": "mallory"}))
    assert json.loads(AuditStaged.objects.get().body)["actor"] == "ana"


@needs_postgres()
@pytest.mark.django_db
def test_a_record_that_cannot_take_the_lock_is_staged_and_its_action_commits_with_it():
    """Another session holds the lock: the record is staged in this transaction instead of waiting."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(7316420051)")
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        done = pool.submit(holder)
        assert held.wait(timeout=30)
        with transaction.atomic():
            write_session_row("staged-one")
            assert record(action="session.test", object_type="session", object_id="staged-one") is None
            assert AuditStaged.objects.count() == 1
            assert not AuditRecord.objects.filter(object_id="staged-one").exists()
        release.set()
        done.result()


@needs_postgres()
def test_a_record_staged_behind_a_holder_is_sequenced_after_the_holder_commits(committed_db):
    """The lost wake-up: the stager's own attempt finds the lock taken and leaves; the holder looks again after
    its commit and sequences it. Nothing is left staged, the log is dense and verifies."""
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                record(action="session.holder")
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        done = pool.submit(holder)
        assert holding.wait(timeout=30)
        with transaction.atomic():
            assert record(action="session.staged") is None
        # Committed, and its own attempt to sequence found the lock taken: still staged.
        assert AuditStaged.objects.count() == 1
        release.set()
        done.result()

    assert AuditStaged.objects.count() == 0
    assert list(AuditRecord.objects.order_by("seq").values_list("action", flat=True)) == [
        "session.holder",
        "session.staged",
    ]
    assert all_seqs() == [0, 1]
    assert "occurred" in body_of(AuditRecord.objects.get(action="session.staged"))
    assert verify_log().ok


@pytest.mark.django_db
def test_a_damaged_staged_row_stops_sequencing_at_it_and_is_named(caplog):
    """A staged row the recorder could not have written (tampering) is never skipped or guessed at: sequencing
    stops there with an alert naming it, and the records behind it stay staged, in order (V-222485)."""
    with transaction.atomic():
        stage(BODY)
        AuditStaged.objects.create(body='{"actor": "mallory"}')
        stage(BODY)
    damaged = AuditStaged.objects.order_by("id")[1].pk
    with pytest.raises(StagedRecordDamaged, match=f"staged audit record {damaged} is damaged"):
        drain_staged()
    assert AuditStaged.objects.count() == 3
    assert not AuditRecord.objects.exists()
    with caplog.at_level(logging.CRITICAL, logger="appliance.audit"):
        after_staging_commit()
    assert f"staged audit record {damaged} is damaged" in caplog.text
