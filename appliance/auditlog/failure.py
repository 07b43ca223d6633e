"""Audit failure means fail closed: the action is refused with 503 and the operators are alerted (V-222486,
V-222484, V-222485).

`record()` runs inside the action's transaction, so an append that fails rolls the action back with it; what is
left is to answer the request honestly (503: the service cannot act without its audit trail, rather than a
generic 500 or, worse, a 400 blaming the user's input) and to raise an alert an operator sees. An append can fail
as `AuditWriteError` or as whatever database error the insert raised (a full disk, a refusing trigger, a lost
connection); actions may also wrap that error in their own (for instance an IntegrityError read as "name already
taken"). So a failure is recognised by where it was raised, not by its type: anywhere inside the recorder's
append, at any depth of the exception's cause/context chain. The alert names the action and the request, never
the exception's text, which can quote the values of the row that failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import CodeType, TracebackType

from appliance.auditlog import recorder
from appliance.auditlog.recorder import AuditWriteError

logger = logging.getLogger("appliance.audit")

# The code of the functions that append: an exception raised while one of them is on the stack is an audit failure.
_APPEND_CODE: frozenset[CodeType] = frozenset({recorder.record.__code__, recorder.record_on_its_own.__code__})
RETRY_AFTER_SECONDS = 60
MESSAGE = "The action was refused because its audit record could not be written. Nothing was changed."


@dataclass(frozen=True)
class AuditFailure:
    """What the alert may say about a failed append: the audited action's name and the error's type, no values."""

    action: str
    error: str


def _frames(traceback: TracebackType | None) -> list[TracebackType]:
    frames = []
    while traceback is not None:
        frames.append(traceback)
        traceback = traceback.tb_next
    return frames


def audit_failure(exc: BaseException) -> AuditFailure | None:
    """Classify `exc`: an AuditFailure if it (or anything in its cause/context chain) was raised while appending
    an audit record, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for entry in _frames(current.__traceback__):
            frame = entry.tb_frame
            if frame.f_code in _APPEND_CODE:
                action = frame.f_locals.get("action")
                if action is None:  # record_on_its_own: the action is a keyword argument one level up
                    action = (frame.f_locals.get("kwargs") or {}).get("action")
                return AuditFailure(action=str(action or "(unknown)"), error=type(current).__name__)
        if isinstance(current, AuditWriteError):  # raised before any append frame (by a caller's own check)
            return AuditFailure(action="(unknown)", error=type(current).__name__)
        current = current.__cause__ or current.__context__
    return None


def alert(failure: AuditFailure, *, method: str, path: str, request_id: str) -> None:
    """The operators' alert (V-222484, V-222485): CRITICAL on "appliance.audit", which journald or the site's
    syslog forwards to the SA and ISSO. The path is the request's, without its query string."""
    logger.critical(
        "AUDIT FAILURE: the audit record of action %s could not be written (%s); the request %s %s "
        "(request id %s) was refused with 503 and nothing of it was kept",
        failure.action,
        failure.error,
        method,
        path,
        request_id,
    )
