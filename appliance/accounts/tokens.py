"""Personal API tokens: `Authorization: Bearer <token>`, stored only as SHA-256, expiring, revocable.

A token is 32 random bytes, so a plain SHA-256 of it is a safe verifier (no password stretching needed: nothing
to brute-force). Every authenticated use is attributable: the request's audit context carries the token id, and
each use appends a `token.use` record.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from appliance.accounts.models import ApiToken, User
from appliance.auditlog import context as audit_context
from appliance.auditlog.recorder import record, record_on_its_own

TOKEN_PREFIX = "apl_"  # noqa: S105  (a public marker that lets secret scanners spot tokens; not a secret)


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _refusal_reason(token: ApiToken | None) -> str:
    """Why a presented token is refused ("" when it may be used); the audit record says which."""
    if token is None:
        return "unknown"
    if token.revoked_at is not None:
        return "revoked"
    if not token.is_usable:
        return "expired"
    if not token.user.is_active or token.user.is_locked:
        return "account disabled or locked"
    return ""


def _refuse(reason: str, token: ApiToken | None = None) -> AuthenticationFailed:
    """Record the refused use in a transaction of its own (it must survive the failed request); answer 401."""
    record_on_its_own(
        action="token.use",
        outcome="denied",
        object_type="api_token",
        object_id=str(token.pk) if token else "",
        actor=token.user.username if token else "",
        details={"reason": reason},
    )
    if reason == "malformed":
        return AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
    return AuthenticationFailed("Invalid, expired or revoked token.")


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`; every use, accepted or refused, is an audit record (`token.use`)."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2 or len(parts[1]) > 200 or not parts[1].isascii():
            raise _refuse("malformed")
        token = ApiToken.objects.select_related("user").filter(digest=digest_of(parts[1].decode("ascii"))).first()
        reason = _refusal_reason(token)
        if token is None or reason:
            raise _refuse(reason, token)
        user = token.user
        audit_context.update(actor=user.username, roles=tuple(user.roles), token=str(token.pk))
        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
            record(action="token.use", object_type="api_token", object_id=str(token.pk), details={"name": token.name})
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="appliance"'
