"""DRF's exception handler, plus: a refusal raised inside an API view is audited once its transaction is gone, and
an audit record that could not be written fails the request closed with 503 (V-222486).

The audit failure is recognised by `appliance.auditlog.failure.audit_failure` wherever in the exception's chain
it was raised, so it is answered 503 even when an action wrapped it in an error of its own (which DRF would
otherwise answer 400, blaming the caller's input for a failure of the appliance).
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from appliance.access.denial import AccessDenied
from appliance.auditlog.context import current
from appliance.auditlog.failure import MESSAGE, RETRY_AFTER_SECONDS, alert, audit_failure


def handle_api_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    failure = audit_failure(exc)
    if failure is None and isinstance(exc, AccessDenied):
        try:
            exc.record()
        except Exception as unrecorded:  # the denial's own record failed: that too fails closed
            failure = audit_failure(unrecorded)
            if failure is None:
                raise
    if failure is not None:
        request = context.get("request")
        alert(
            failure,
            method=getattr(request, "method", "") or "",
            path=getattr(request, "path", ""),
            request_id=current().request_id,
        )
        set_rollback()
        return Response(
            {"detail": MESSAGE, "code": "audit_unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return exception_handler(exc, context)
