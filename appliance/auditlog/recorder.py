"""`record()`: the only way anything is appended to the audit log.

Called inside the transaction of the action it records, so both commit together or neither does: if the append
fails, the exception aborts the action (fail closed, V-222486). Sequence numbers are dense and never fork:
appends are serialised by a transaction-scoped lock (a PostgreSQL advisory lock; on SQLite the IMMEDIATE
transaction mode already holds the database's write lock), and `seq` is the primary key, so a fork could only
ever surface as a failed action, never as two records with one number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from appliance.auditlog.checkpoints import after_append
from appliance.auditlog.context import current
from appliance.auditlog.models import AuditRecord
from audit.encoding import EncodingError, canonical_json, leaf_hash

RECORD_VERSION = 1
OUTCOMES = ("ok", "denied", "error")
# Any key that looks like it could carry a secret is refused outright (V-222444): a programming error, not data.
_SECRET_KEY = re.compile(r"pass(word)?|secret|token_value|private|otp_code|session_key|^key$", re.IGNORECASE)
# An arbitrary constant: the PostgreSQL advisory lock id that serialises appends.
_APPEND_LOCK_ID = 7_316_420_051


class AuditWriteError(RuntimeError):
    """The record could not be appended; the action that asked for it must not happen."""


def format_time(moment: datetime) -> str:
    """The record's time field: UTC, microseconds, `Z` (also what the verifier compares the `time` column to)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def _next_seq() -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_APPEND_LOCK_ID])
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    return 0 if last is None else last + 1


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
) -> AuditRecord:
    """Append one audit record in the caller's transaction (or its own, if there is none) and return it.

    `actor`/`roles` override the context's, for events about someone who is not (yet) the signed-in user.
    """
    if outcome not in OUTCOMES:
        raise AuditWriteError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    details = dict(details or {})
    _check_details(details)
    context = current()
    with transaction.atomic():
        seq = _next_seq()
        actor_name = context.actor if actor is None else actor
        # The clock is read only once the append lock is held, so that time never decreases as seq grows: read
        # before it, a writer that waited for the lock would record an earlier time under a later seq.
        moment = timezone.now()
        body = {
            "v": RECORD_VERSION,
            "seq": seq,
            "time": format_time(moment),
            "component": context.component,
            "actor": actor_name,
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
            canonical = canonical_json(body)
        except EncodingError as exc:
            raise AuditWriteError(f"audit record for {action} cannot be encoded: {exc}") from exc
        row = AuditRecord.objects.create(
            seq=seq,
            time=moment,
            actor=actor_name,
            action=action,
            outcome=outcome,
            object_type=object_type,
            object_id=str(object_id),
            label=label,
            client_ip=context.client_ip,
            request_id=context.request_id,
            canonical=canonical.decode("utf-8"),
            leaf_hash=leaf_hash(canonical),
        )
        after_append(row)  # a signed checkpoint, when one is due, in this same transaction
        return row


def record_on_its_own(**kwargs: Any) -> AuditRecord:
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
