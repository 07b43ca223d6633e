"""Concurrent audited writes on PostgreSQL: one record per action, dense sequence, no fork, time in seq order.

Each worker thread has its own database connection, so the appends really race (the advisory lock in `record()`
is what serialises them); the writes really commit (`committed_db`). STIG: V-222486 (no action without its
record), V-222474 (time order).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.contrib.sessions.models import Session
from django.db import connection, transaction

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from tests.auditlog.helpers import write_session_row
from tests.conftest import needs_postgres

WRITES = 100
# Below PostgreSQL's default max_connections (100) with room for the test's own connection.
WORKERS = 50


@pytest.fixture
def on_the_test_database() -> None:
    """Refuse to start unless Django switched to the test database: pytest-django sets one up only if some
    collected test uses `db`, and `committed_db` would otherwise commit to, and then flush, the real database."""
    name = str(connection.settings_dict["NAME"])
    if not name.startswith("test_"):
        pytest.fail(f"refusing to commit to and flush {name!r}: not a test database")


@needs_postgres()
@pytest.mark.django_db
def test_an_append_holds_the_advisory_lock_until_the_transaction_ends():
    """The lock that serialises appends is transaction-scoped: released at commit, so seq order is commit order.
    (Also makes pytest-django set up the test database when this module runs on its own.)"""
    advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    with transaction.atomic(), connection.cursor() as cursor:
        record(action="session.test")
        cursor.execute(advisory)
        assert cursor.fetchone() == (1,)


@needs_postgres()
def test_concurrent_audited_writes_give_a_dense_unforked_log(on_the_test_database, committed_db):
    start = AuditRecord.objects.count()
    barrier = Barrier(WORKERS)

    def audited_write(index: int) -> None:
        try:
            if index < WORKERS:
                barrier.wait(timeout=30)  # the first wave starts together, to make the appends collide
            key = f"concurrent-{index:03d}"
            with transaction.atomic():
                write_session_row(key)
                record(action="session.test", object_type="session", object_id=key)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(audited_write, range(WRITES)))  # list(): re-raise any worker's exception

    rows = list(AuditRecord.objects.order_by("seq").filter(action="session.test"))
    assert len(rows) == WRITES
    assert AuditRecord.objects.count() == start + WRITES
    assert [row.seq for row in rows] == list(range(start, start + WRITES))
    expected = {f"concurrent-{index:03d}" for index in range(WRITES)}
    assert {row.object_id for row in rows} == expected
    assert set(Session.objects.filter(session_key__startswith="concurrent-").values_list("session_key", flat=True)) == (
        expected
    )
    times = [row.time for row in rows]
    assert times == sorted(times), "a later seq carries an earlier time"
