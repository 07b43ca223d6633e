"""The one lock that orders the audit log: whoever holds it may give out the next `seq`.

On PostgreSQL it is a transaction-scoped advisory lock, released when the holder commits or rolls back. On SQLite
the IMMEDIATE transaction mode already holds the database's only write lock, so there is nothing more to take and
the lock is always free to the writer that got that far.
"""

from __future__ import annotations

from django.db import connection

# An arbitrary constant: the PostgreSQL advisory lock id that serialises appends, checkpoints and exports.
APPEND_LOCK_ID = 7_316_420_051


def hold_append_lock() -> None:
    """Take the append lock for the rest of the transaction, waiting for it (re-entrant)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_ID])
