"""Session policy on every request: idle and absolute timeouts (V-222389, V-222390).

The idle limit of a user is the smallest limit of their roles (privileged roles time out sooner); the absolute
lifetime ends a session however active it is. A session that has outlived either is destroyed server-side, the
timeout is recorded under the session's owner (V-222445), and the browser is sent to sign in again. A signed-in
session without a sign-in time was not made by our sign-in flow and is ended the same way.

Runs after the audit context middleware (so records carry the request's id and address) and before the access
middleware (so an expired session never reaches a view).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse

from appliance.access.policy import get_policy
from appliance.accounts.signin import SESSION_AUTH_TIME, SESSION_LAST_SEEN, expire_session

# Told to the user on the page they are sent to, so an ended session is never a silent surprise (V-222392).
TIMEOUT_MESSAGES = {
    "idle": "Your session ended after a period of inactivity. Please sign in again.",
    "absolute": "Your session reached its maximum length. Please sign in again.",
    "": "Your session has ended. Please sign in again.",
}

__all__ = ["SESSION_AUTH_TIME", "SESSION_LAST_SEEN", "SessionPolicyMiddleware", "idle_limit_seconds"]


def idle_limit_seconds(roles: Sequence[str]) -> int:
    """The idle limit of a holder of `roles`: the smallest of their roles' limits, the default for roles without
    one of their own (and for a user with no role at all)."""
    security = get_policy().security
    limits = [security.idle_minutes_by_role.get(role, security.idle_minutes) for role in roles]
    return min(limits, default=security.idle_minutes) * 60


def expiry_reason(session: SessionBase, roles: Sequence[str], now: float) -> tuple[str, int]:
    """Why this signed-in session must end now ("" when it may go on), and how long it has been idle."""
    auth_time = session.get(SESSION_AUTH_TIME)
    if not isinstance(auth_time, int | float):
        return "no sign-in time", 0
    last_seen = session.get(SESSION_LAST_SEEN, auth_time)
    if not isinstance(last_seen, int | float):
        last_seen = auth_time
    idle = now - float(last_seen)
    if idle > idle_limit_seconds(roles):
        return "idle", int(idle)
    if now - float(auth_time) > get_policy().security.absolute_hours * 3600:
        return "absolute", int(idle)
    return "", int(idle)


class SessionPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            now = time.time()
            reason, idle = expiry_reason(request.session, list(getattr(user, "roles", ())), now)
            if reason:
                expire_session(request=request, reason=reason, idle_seconds=idle)
                messages.info(request, TIMEOUT_MESSAGES.get(reason, TIMEOUT_MESSAGES[""]))
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            request.session[SESSION_LAST_SEEN] = now
        return self.get_response(request)
