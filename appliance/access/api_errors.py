"""DRF's exception handler, plus: a refusal raised inside an API view is audited once its transaction is gone."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler

from appliance.access.denial import AccessDenied


def handle_api_exception(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, AccessDenied):
        exc.record()
    return exception_handler(exc, context)
