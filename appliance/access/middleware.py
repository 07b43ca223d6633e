"""Deny by default: a request reaches a view only if the view declares its guard and the guard passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from appliance.access.decision import decide
from appliance.access.denial import AccessDenied, deny
from appliance.access.markers import rule_of


class DenyByDefaultMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        rule = rule_of(view_func)
        if rule is None:
            raise deny(permission="(none declared)", gate="unguarded view", path=request.path)
        if rule.public:
            return None
        if getattr(view_func, "cls", None) is not None:
            return None  # a DRF view: its own authentication runs first, then PolicyPermission
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        decision = decide(request.user, rule.permission)
        if not decision:
            raise deny(permission=rule.permission, gate=decision.gate, path=request.path)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        # By now any transaction of the refused view has rolled back, so the denial can be its own record.
        if isinstance(exception, AccessDenied):
            exception.record()
