"""Session policy on every request: the consent notice first, then idle and absolute timeouts (V-222389/90).

The idle limit of a user is the smallest limit of their roles (privileged roles time out sooner). A timed-out
session is destroyed server-side and the timeout is audited (V-222445).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from appliance.access.policy import get_policy
from appliance.auditlog.recorder import record

SESSION_AUTH_TIME = "auth_time"
SESSION_LAST_SEEN = "last_seen"


def idle_limit_seconds(roles: list[str]) -> int:
    security = get_policy().security
    limits = [security.idle_minutes] + [security.idle_minutes_by_role[r] for r in roles if r in security.idle_minutes_by_role]
    return min(limits) * 60


class SessionPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and request.session.get(SESSION_AUTH_TIME) is not None:
            now = time.time()
            roles = list(getattr(user, "roles", []))
            auth_time = float(request.session[SESSION_AUTH_TIME])
            last_seen = float(request.session.get(SESSION_LAST_SEEN, auth_time))
            absolute = get_policy().security.absolute_hours * 3600
            reason = ""
            if now - last_seen > idle_limit_seconds(roles):
                reason = "idle"
            elif now - auth_time > absolute:
                reason = "absolute"
            if reason:
                with transaction.atomic():
                    record(
                        action="session.timeout",
                        object_type="user",
                        object_id=user.get_username(),
                        details={"reason": reason, "idle_seconds": int(now - last_seen)},
                    )
                logout(request)
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            request.session[SESSION_LAST_SEEN] = now
        return self.get_response(request)
