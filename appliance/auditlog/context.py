"""Who, where and through what an audited event happens: set once per request, command or job.

Kept in a context variable so that an action deep in the call stack records the right request id, client address
and session without every function passing them along.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class AuditContext:
    component: str  # "web", "api", "cli", "worker", "system"
    actor: str = ""
    roles: Sequence[str] = ()
    session: str = ""  # an opaque per-login reference, never the session key itself (V-222577)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client_ip: str | None = None
    token: str = ""  # the id (never the secret) of the API token that authenticated the request


_SYSTEM = AuditContext(component="system", request_id="")
_current: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("audit_context", default=None)


def current() -> AuditContext:
    """The context of the running request, command or job; outside any, the system itself."""
    return _current.get() or _SYSTEM


@contextmanager
def audit_context(context: AuditContext) -> Iterator[AuditContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def update(**changes: object) -> AuditContext:
    """Refine the current context in place (after authentication names the actor, for instance)."""
    context = replace(current(), **changes)  # type: ignore[arg-type]
    _current.set(context)
    return context
