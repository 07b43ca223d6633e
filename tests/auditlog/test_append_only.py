"""The database itself refuses to change or remove audit rows, on SQLite and on PostgreSQL.

STIG: protection of audit information from unauthorized modification and deletion (the application-level rules
that V-222473..V-222478 records depend on). Raw SQL, because the ORM is not the only way in.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record

pytestmark = pytest.mark.django_db

STATEMENTS = {
    "update-record": "UPDATE auditlog_auditrecord SET actor = 'mallory'",
    "delete-record": "DELETE FROM auditlog_auditrecord",
    "update-checkpoint": "UPDATE auditlog_auditcheckpoint SET note = 'forged'",
    "delete-checkpoint": "DELETE FROM auditlog_auditcheckpoint",
}


@pytest.fixture
def one_of_each():
    with transaction.atomic():
        record(action="session.test", actor="ana")
    AuditCheckpoint.objects.create(size=1, root_hash=b"\x00" * 32, time=timezone.now(), key_id="k", note="n")


@pytest.mark.parametrize("sql", STATEMENTS.values(), ids=STATEMENTS.keys())
@pytest.mark.usefixtures("one_of_each")
def test_the_database_refuses_to_change_or_delete_audit_rows(sql):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditRecord.objects.get().actor == "ana"
    assert AuditCheckpoint.objects.get().note == "n"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE exists only on PostgreSQL")
@pytest.mark.parametrize("table", ["auditlog_auditrecord", "auditlog_auditcheckpoint"])
@pytest.mark.usefixtures("one_of_each")
def test_postgres_refuses_to_truncate_audit_tables(table):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
    assert AuditRecord.objects.count() == 1
    assert AuditCheckpoint.objects.count() == 1
