"""Sets the audit context of each request (request id, client address, the signed-in user), and fails closed
when an audit record cannot be written: the request is answered 503 and the operators alerted (V-222486).

The action's own transaction has already rolled back by the time the failure reaches this middleware (the record
is written inside it), so answering is all that is left to do. A failure raised by a view arrives through
`process_exception`. One raised by a middleware further in (a session timeout's record, a denial recorded after
the view) is turned into a 500 response by Django before it gets here; Django announces it through the
`got_request_exception` signal, whose receiver below marks the request so that the 500 is replaced by the 503.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse

from appliance.auditlog.context import AuditContext, audit_context, current
from appliance.auditlog.failure import MESSAGE, RETRY_AFTER_SECONDS, AuditFailure, alert, audit_failure

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. nginx on the same host connects over a unix socket and sets X-Real-IP; behind it,
    REMOTE_ADDR is empty, so X-Real-IP is trusted only then (it cannot be injected over TCP)."""
    remote = request.META.get("REMOTE_ADDR") or ""
    if remote:
        return remote
    forwarded = request.META.get("HTTP_X_REAL_IP", "")
    return forwarded or None


_FAILURE_ATTRIBUTE = "_audit_failure"


def audit_failure_response(request: HttpRequest, failure: AuditFailure) -> HttpResponse:
    """Alert, and answer 503 in plain text: a page template could itself need the database that just failed."""
    alert(failure, method=request.method or "", path=request.path, request_id=current().request_id)
    response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _note_audit_failure(sender: object, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """Receiver of got_request_exception, sent from inside Django's `except` block: mark an audit failure."""
    exc = sys.exception()
    if request is not None and exc is not None:
        failure = audit_failure(exc)
        if failure is not None:
            setattr(request, _FAILURE_ATTRIBUTE, failure)


def request_id(request: HttpRequest) -> str:
    offered = request.META.get("HTTP_X_REQUEST_ID", "")
    return offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_note_audit_failure, dispatch_uid="appliance.auditlog.fail_closed")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        signed_in = user.is_authenticated
        context = AuditContext(
            component="api" if request.path.startswith("/api/") else "web",
            actor=user.get_username() if signed_in else "",
            roles=tuple(getattr(user, "roles", ())) if signed_in else (),
            session=request.session.get("audit_session", "") if signed_in else "",
            request_id=request_id(request),
            client_ip=client_ip(request),
        )
        with audit_context(context):
            response = self.get_response(request)
            failure: AuditFailure | None = getattr(request, _FAILURE_ATTRIBUTE, None)
            if failure is not None and response.status_code >= 500:
                response = audit_failure_response(request, failure)
        response["X-Request-ID"] = context.request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view whose audit record could not be written: 503 (V-222486); anything else goes on as before."""
        failure = audit_failure(exception)
        if failure is None:
            return None
        return audit_failure_response(request, failure)
