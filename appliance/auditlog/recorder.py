"""`record()`: the only way anything is appended to the audit log.

Called inside the transaction of the action it records, so both commit together or neither does: if the append
fails, the exception aborts the action (fail closed, V-222486). Sequence numbers are dense and never fork: only
the holder of the append lock gives them out (locking.py), and `seq` is the primary key, so a fork could only
ever surface as a failed action, never as two records with one number. When the lock is held by another
transaction, the record is staged in this one and sequenced right after the commit (sequencer.py), so that
concurrent actions do not commit one behind the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction

from appliance.auditlog.context import current
from appliance.auditlog.models import AuditRecord
from appliance.auditlog.sequencer import after_append_commit, after_staging_commit, append_bodies, stage_unless_locked
from audit.encoding import EncodingError

RECORD_VERSION = 1
OUTCOMES = ("ok", "denied", "error")
# Any key that looks like it could carry a secret is refused outright (V-222444): a programming error, not data.
_SECRET_KEY = re.compile(r"pass(word)?|secret|token_value|private|otp_code|session_key|^key$", re.IGNORECASE)


class AuditWriteError(RuntimeError):
    """The record could not be appended; the action that asked for it must not happen."""


def _check_details(details: object, path: str = "details") -> None:
    """Refuse secret-looking keys at any depth, inside lists as well as objects (V-222444)."""
    if isinstance(details, Mapping):
        for key, value in details.items():
            if _SECRET_KEY.search(str(key)):
                raise AuditWriteError(f"{path}.{key}: audit details must never carry secrets")
            _check_details(value, f"{path}.{key}")
    elif isinstance(details, list | tuple):
        for index, item in enumerate(details):
            _check_details(item, f"{path}[{index}]")


def record(
    *,
    action: str,
    outcome: str = "ok",
    object_type: str = "",
    object_id: str | int = "",
    label: str = "",
    details: Mapping[str, Any] | None = None,
    actor: str | None = None,
    roles: list[str] | None = None,
) -> AuditRecord | None:
    """Append one audit record in the caller's transaction (or its own, if there is none) and return it, or
    None when it was staged, to be sequenced as soon as the transaction commits.

    `actor`/`roles` override the context's, for events about someone who is not (yet) the signed-in user.
    """
    if outcome not in OUTCOMES:
        raise AuditWriteError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    details = dict(details or {})
    _check_details(details)
    context = current()
    body = {
        "v": RECORD_VERSION,
        "component": context.component,
        "actor": context.actor if actor is None else actor,
        "roles": sorted(context.roles if roles is None else roles),
        "session": context.session,
        "token": context.token,
        "request_id": context.request_id,
        "client_ip": context.client_ip,
        "action": action,
        "object": {"type": object_type, "id": str(object_id)},
        "label": label,
        "outcome": outcome,
        "details": details,
    }
    try:
        # No savepoint: a failed append must take the whole action down with it, never be caught and survived.
        with transaction.atomic(savepoint=False):
            if connection.vendor == "postgresql":
                if stage_unless_locked(body):
                    transaction.on_commit(after_staging_commit)
                    return None
                transaction.on_commit(after_append_commit)
            return append_bodies([body])[0]
    except EncodingError as exc:
        raise AuditWriteError(f"audit record for {action} cannot be encoded: {exc}") from exc


def record_on_its_own(**kwargs: Any) -> AuditRecord | None:
    """Append a record in a transaction of its own: for denials and failures, which must survive the rollback
    of whatever was refused. Must not be called inside another transaction, where it could not be its own.

    "Its own" is Django's durable transaction: the same rule, except that the transaction a test case wraps around
    each test does not count (so denials are testable without committing). The check is made here first so that
    the refusal is an AuditWriteError, as every other audit failure is.
    """
    blocks = connection.atomic_blocks
    if blocks and not getattr(blocks[-1], "_from_testcase", False):
        raise AuditWriteError("a denial must be recorded outside the refused action's transaction")
    with transaction.atomic(durable=True):
        return record(**kwargs)
