"""How much of its storage budget the audit log uses, and the alert at 75% of it (V-222483, AU-5(1)).

The budget (`audit.storage_budget_mb`, settings.AUDIT_STORAGE_BUDGET_MB) is what the site allocated to the audit
tables; the records are never pruned on the appliance (they leave it in exported bundles), so the SA and ISSO must
hear well before it fills. `check_audit_storage()` is cheap (catalog sizes on PostgreSQL, SQLite's page statistics)
and is meant to run at start-up and from a periodic timer (`manage.py audit_db storage`). At or above 75% it logs
a WARNING (CRITICAL from 95%) on "appliance.audit" and appends an "audit.storage_warning" record, so that the
warning is itself part of the audited history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from appliance.auditlog.grants import audit_tables
from appliance.auditlog.recorder import record
from appliance.auditlog.triggers import APPEND_ONLY_TABLES

logger = logging.getLogger("appliance.audit")

WARNING_PERCENT = 75  # V-222483: notify at 75% of the allocated audit record storage
CRITICAL_PERCENT = 95
# SQLite without the dbstat table: bytes per row beyond the stored text (row header, the other columns, the leaf
# hash, and the entries of the table's indexes), measured on this schema's rows and rounded up.
SQLITE_ROW_OVERHEAD = 400


@dataclass(frozen=True)
class StorageStatus:
    used_bytes: int
    budget_bytes: int
    percent: int  # whole percent, rounded down: audit records hold no floats
    level: str  # "ok", "warning" or "critical"


def _tables() -> list[str]:
    return audit_tables(connection.introspection.table_names())


def audit_storage_used() -> int:
    """Bytes the audit tables and their indexes take in the database."""
    tables = _tables()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(name))), 0) FROM unnest(%s::text[]) AS name",
                [tables],
            )
            row = cursor.fetchone()
            return int(row[0]) if row else 0
        if connection.vendor == "sqlite":
            marks = ",".join("%s" for _ in tables)  # placeholders only; the names travel as parameters
            query = f"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name IN ({marks}))"  # noqa: E501, S608
            try:
                cursor.execute(query, tables)
            except DatabaseError:  # a SQLite built without the dbstat table: estimate from the rows instead
                return _sqlite_estimate(cursor)
            row = cursor.fetchone()
            return int(row[0]) if row else 0
    raise NotImplementedError(f"no audit storage measure for database vendor {connection.vendor!r}")


def _sqlite_estimate(cursor: object) -> int:
    record_table, checkpoint_table = APPEND_ONLY_TABLES
    total = 0
    for table, column in ((record_table, "canonical"), (checkpoint_table, "note")):
        cursor.execute(  # type: ignore[attr-defined]
            f"SELECT COALESCE(SUM(LENGTH({column})), 0) + COUNT(*) * %s FROM {table}",  # noqa: S608 - constants
            [SQLITE_ROW_OVERHEAD],
        )
        total += int(cursor.fetchone()[0])  # type: ignore[attr-defined]
    return total


def check_audit_storage(*, budget_bytes: int | None = None) -> StorageStatus:
    """Measure; at or above 75% of the budget, alert and record "audit.storage_warning". Returns the status."""
    budget = budget_bytes if budget_bytes is not None else settings.AUDIT_STORAGE_BUDGET_MB * 1024 * 1024
    used = audit_storage_used()
    percent = used * 100 // budget
    level = "critical" if percent >= CRITICAL_PERCENT else "warning" if percent >= WARNING_PERCENT else "ok"
    status = StorageStatus(used_bytes=used, budget_bytes=budget, percent=percent, level=level)
    if level == "ok":
        return status
    logger.log(
        logging.CRITICAL if level == "critical" else logging.WARNING,
        "AUDIT STORAGE: the audit log uses %s%% of its budget (%s of %s bytes); export it to the auditor and "
        "raise audit.storage_budget_mb or the database's space before it fills",
        percent,
        used,
        budget,
    )
    record(
        action="audit.storage_warning",
        object_type="audit_log",
        object_id="storage",
        details={"used_bytes": used, "budget_bytes": budget, "percent": percent, "level": level},
    )
    return status
