"""Refusals: every one answers 404 (no existence oracle) and every one is an audit record.

A refusal raised inside an action's transaction cannot be recorded there (the rollback would take the record
with it), so `AccessDenied` carries its own description; it is written in a transaction of its own as soon as
no transaction is open: immediately where possible, else by the middleware or API exception handler that sees
the exception after the transaction has rolled back.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.http import Http404

from appliance.auditlog.recorder import AuditWriteError, record_on_its_own


class AccessDenied(Http404):
    """A refused request. Subclasses Http404 so that every layer answers it as "not found"."""

    def __init__(self, *, permission: str, gate: str, object_type: str = "", object_id: str = "", path: str = ""):
        super().__init__("Not found.")
        self.permission = permission
        self.gate = gate
        self.object_type = object_type
        self.object_id = object_id
        self.path = path
        self.recorded = False

    def record(self) -> None:
        """Write the denial's audit record once, in its own transaction."""
        if self.recorded:
            return
        details: dict[str, Any] = {"permission": self.permission, "gate": self.gate}
        if self.path:
            details["path"] = self.path[:512]
        record_on_its_own(
            action="access.denied",
            outcome="denied",
            object_type=self.object_type,
            object_id=self.object_id,
            details=details,
        )
        self.recorded = True


def deny(*, permission: str, gate: str, object_type: str = "", object_id: str = "", path: str = "") -> AccessDenied:
    """Build the refusal and record it now if it can be a transaction of its own; the caller raises it.

    Whether it can is the recorder's rule (`record_on_its_own`), asked rather than restated here: a second,
    stricter copy of that rule once left refusals raised outside any view (the middleware's role gate, unguarded
    views) unrecorded wherever the two disagreed. Inside the refused action's transaction the recorder refuses
    before touching the database, and the record is written after the rollback by whoever catches the exception.
    """
    denied = AccessDenied(permission=permission, gate=gate, object_type=object_type, object_id=object_id, path=path)
    try:
        denied.record()
    except AuditWriteError:
        if not connection.in_atomic_block:
            raise  # not the "inside a transaction" refusal: a real failure to audit, so fail closed
    return denied
