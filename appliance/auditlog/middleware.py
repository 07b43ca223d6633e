"""Sets the audit context of each request: request id, client address, and (once known) the signed-in user."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from appliance.auditlog.context import AuditContext, audit_context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. nginx on the same host connects over a unix socket and sets X-Real-IP; behind it,
    REMOTE_ADDR is empty, so X-Real-IP is trusted only then (it cannot be injected over TCP)."""
    remote = request.META.get("REMOTE_ADDR") or ""
    if remote:
        return remote
    forwarded = request.META.get("HTTP_X_REAL_IP", "")
    return forwarded or None


def request_id(request: HttpRequest) -> str:
    offered = request.META.get("HTTP_X_REQUEST_ID", "")
    return offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

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
        response["X-Request-ID"] = context.request_id
        return response
