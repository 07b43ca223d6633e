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

TOKEN_PREFIX = "apl_"


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2 or len(parts[1]) > 200:
            raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Malformed token: not ASCII.") from exc
        token = ApiToken.objects.select_related("user").filter(digest=digest_of(secret)).first()
        if token is None or not token.is_usable or not token.user.is_active or token.user.is_locked:
            reason = (
                "unknown"
                if token is None
                else "revoked"
                if token.revoked_at
                else "expired"
                if not token.is_usable
                else "account disabled or locked"
            )
            record_on_its_own(
                action="token.use",
                outcome="denied",
                object_type="api_token",
                object_id=str(token.pk) if token else "",
                actor=token.user.username if token else "",
                details={"reason": reason},
            )
            raise AuthenticationFailed("Invalid, expired or revoked token.")
        user = token.user
        audit_context.update(actor=user.username, roles=tuple(user.roles), token=str(token.pk))
        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
            record(action="token.use", object_type="api_token", object_id=str(token.pk), details={"name": token.name})
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="appliance"'
