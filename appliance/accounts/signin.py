"""Sign-in: the consent notice, the lockout rules, the second factor and sign-out, each with its audit record.

Owns every write the sign-in flow makes (failure counters, lock, TOTP enrolment, the session's sign-in state) and
runs each in one transaction together with its audit record, so no sign-in event happens unrecorded. The numbers
(failures, window, idle limits, which roles need a second factor) come only from `policies/security.toml`; this
module never names a role. It must never tell a caller *which* of username or password was wrong, and never put a
password, a TOTP code or a session key into an audit record.
"""

from __future__ import annotations

import secrets
import time
from base64 import b32encode
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog import context as audit_context
from appliance.auditlog.recorder import record, record_on_its_own

# Session keys. `auth_time`/`last_seen` are read by the session policy middleware; `audit_session` is the opaque
# per-login reference the audit context carries instead of the session key (V-222577).
SESSION_AUTH_TIME = "auth_time"
SESSION_LAST_SEEN = "last_seen"
SESSION_AUDIT = "audit_session"
SESSION_CONSENT = "consent_acknowledged_at"
SESSION_PENDING = "signin_pending"

# The user model's username length: anything longer cannot name an account and is a malformed request.
USERNAME_MAX_LENGTH = 64

# How a sign-in was authenticated, as its audit record names it.
ONE_FACTOR = "password"
TWO_FACTOR = "password+totp"


@dataclass(frozen=True)
class Attempt:
    """What a password check found. `user` is set only when the password was right and the account may sign in."""

    user: User | None
    reason: str = ""  # why it was refused: "unknown user", "wrong password", "locked", "disabled"
    locked_now: bool = False  # this very failure locked the account


@dataclass(frozen=True)
class Pending:
    """A sign-in whose password was right and whose second factor is still owed."""

    user: User
    since: float
    next_url: str


class PendingExpired(Exception):
    """The second factor was not completed in the policy's `mfa.pending_minutes`; the pending state is cleared."""


# --- consent -----------------------------------------------------------------------------------------------------


def has_fresh_consent(request: HttpRequest) -> bool:
    """Whether this browser session acknowledged the notice recently enough to be shown the login form."""
    acknowledged = request.session.get(SESSION_CONSENT)
    if not isinstance(acknowledged, int | float):
        return False
    # A page left open overnight must show the notice again before anyone signs in on it (V-222434).
    return 0 <= time.time() - float(acknowledged) <= get_policy().security.consent_valid_minutes * 60


def acknowledge_consent(*, request: HttpRequest) -> None:
    """Remember the acknowledgement in the session and record it: the consent itself is auditable evidence."""
    with transaction.atomic():
        record(action="consent.acknowledged", details={"notice": "DoD standard notice and consent banner"})
        request.session[SESSION_CONSENT] = time.time()


# --- password and lockout ----------------------------------------------------------------------------------------


def mfa_required(user: User) -> bool:
    """Whether any of the user's roles must present a second factor (the policy says which; V-222523)."""
    return bool(get_policy().security.mfa_required_for_roles.intersection(user.roles))


def record_malformed_attempt(*, attempted_username: str, problem: str) -> None:
    """Record a refused malformed sign-in request. Counts no failure: nobody's password was tried."""
    record_on_its_own(
        action="auth.login",
        outcome="denied",
        actor="",
        roles=[],
        details={
            "reason": "malformed request",
            "problem": problem,
            "attempted_username": attempted_username[:USERNAME_MAX_LENGTH],
        },
    )


def check_password(*, username: str, password: str) -> Attempt:
    """Check a username and password, count a failure toward the lockout, and record the outcome when refused.

    The password is hashed whether or not the account exists, is locked or disabled, so the answer takes the same
    time in every case and cannot be used to find out which accounts exist.
    """
    user = User.objects.filter(username=username).first()
    if user is None:
        make_password(password)  # equalise timing with the existing-account path
        record_on_its_own(
            action="auth.login",
            outcome="denied",
            actor="",
            roles=[],
            details={"reason": "unknown user", "attempted_username": username[:USERNAME_MAX_LENGTH]},
        )
        return Attempt(user=None, reason="unknown user")
    password_ok = user.check_password(password)
    if user.is_locked or not user.is_active:
        reason = "locked" if user.is_locked else "disabled"
        _record_refusal(user, reason)
        return Attempt(user=None, reason=reason)
    if not password_ok:
        return register_failure(user=user, reason="wrong password")
    return Attempt(user=user)


def _record_refusal(user: User, reason: str, **details: Any) -> None:
    record_on_its_own(
        action="auth.login",
        outcome="denied",
        actor=user.username,
        roles=list(user.roles),
        object_type="user",
        object_id=user.username,
        details={"reason": reason, **details},
    )


def register_failure(*, user: User, reason: str) -> Attempt:
    """Count one failed sign-in and lock the account at the policy's limit inside its window (V-222432).

    A failure older than the window starts a new window; reaching `lockout.max_failures` inside it locks the
    account until an administrator unlocks it (V-222433). The row is locked while counting, so concurrent
    failures cannot both read the same count.
    """
    security = get_policy().security
    with transaction.atomic():
        locked_user = User.objects.select_for_update().get(pk=user.pk)
        now = timezone.now()
        window = timedelta(minutes=security.lockout_window_minutes)
        first = locked_user.first_failed_login_at
        if first is None or now - first > window:
            locked_user.failed_logins = 1
            locked_user.first_failed_login_at = now
        else:
            locked_user.failed_logins += 1
        locks = locked_user.locked_at is None and locked_user.failed_logins >= security.lockout_max_failures
        if locks:
            locked_user.locked_at = now
        locked_user.save(update_fields=["failed_logins", "first_failed_login_at", "locked_at"])
        record(
            action="auth.login",
            outcome="denied",
            actor=user.username,
            roles=list(user.roles),
            object_type="user",
            object_id=user.username,
            details={"reason": reason, "failures_in_window": locked_user.failed_logins},
        )
        if locks:
            record(
                action="account.locked",
                actor=user.username,
                roles=list(user.roles),
                object_type="user",
                object_id=user.username,
                details={
                    "failures": locked_user.failed_logins,
                    "window_minutes": security.lockout_window_minutes,
                    "until": "unlocked by an administrator",
                },
            )
    return Attempt(user=None, reason=reason, locked_now=locks)


# --- completing and ending a sign-in ------------------------------------------------------------------------------


def complete_sign_in(*, request: HttpRequest, user: User, method: str, device: TOTPDevice | None = None) -> bool:
    """Sign `user` in on this request: reset the failure count, rotate the session key, start the session clocks.

    Returns False (and records why) when the account was locked or disabled since its password was checked.
    `django.contrib.auth.login` gives the session a new key, so a key planted before sign-in is worthless.
    """
    with transaction.atomic():
        current = User.objects.select_for_update().get(pk=user.pk)
        if current.is_locked or not current.is_active:
            record(
                action="auth.login",
                outcome="denied",
                actor=current.username,
                roles=list(current.roles),
                object_type="user",
                object_id=current.username,
                details={"reason": "locked" if current.is_locked else "disabled", "method": method},
            )
            return False
        current.failed_logins = 0
        current.first_failed_login_at = None
        current.save(update_fields=["failed_logins", "first_failed_login_at"])
        consented = request.session.get(SESSION_CONSENT)
        request.session.pop(SESSION_PENDING, None)
        auth_login(request, current, backend="django.contrib.auth.backends.ModelBackend")
        if device is not None:
            otp_login(request, device)
        now = time.time()
        audit_session = secrets.token_hex(8)
        request.session[SESSION_AUTH_TIME] = now
        request.session[SESSION_LAST_SEEN] = now
        request.session[SESSION_AUDIT] = audit_session
        request.session.pop(SESSION_CONSENT, None)  # one acknowledgement, one sign-in
        audit_context.update(actor=current.username, roles=tuple(current.roles), session=audit_session)
        details: dict[str, Any] = {"method": method}
        if isinstance(consented, int | float):
            details["consent_age_seconds"] = int(now - consented)
        if device is not None:
            details["device"] = device.persistent_id
        record(action="auth.login", object_type="user", object_id=current.username, details=details)
    return True


def sign_out(*, request: HttpRequest) -> None:
    """Record the sign-out, then destroy the session server-side (its row is deleted, not merely forgotten)."""
    with transaction.atomic():
        record(action="auth.logout", object_type="user", object_id=request.user.get_username())
        auth_logout(request)
    audit_context.update(actor="", roles=(), session="")


def expire_session(*, request: HttpRequest, reason: str, idle_seconds: int) -> None:
    """End a session the policy no longer allows (idle or too old) and record it under its owner (V-222445).

    The actor is named explicitly from the session's user, so the record is right whatever the audit context of
    the request holds by the time this runs.
    """
    user = cast(User, request.user)
    with transaction.atomic():
        record(
            action="session.timeout",
            actor=user.username,
            roles=list(user.roles),
            object_type="user",
            object_id=user.username,
            details={"reason": reason, "idle_seconds": idle_seconds},
        )
        auth_logout(request)
    audit_context.update(actor="", roles=(), session="")


# --- second factor -----------------------------------------------------------------------------------------------


def begin_second_factor(*, request: HttpRequest, user: User, next_url: str) -> None:
    """Hold a correct password as pending until the second factor is presented; the user is not signed in yet."""
    with transaction.atomic():
        record(
            action="auth.password",
            actor=user.username,
            roles=list(user.roles),
            object_type="user",
            object_id=user.username,
            details={"second_factor": "required"},
        )
        request.session[SESSION_PENDING] = {"user": user.pk, "since": time.time(), "next": next_url}


def pending_sign_in(request: HttpRequest) -> Pending | None:
    """The pending sign-in of this session, or None; raises PendingExpired (recorded) once it is too old."""
    state = request.session.get(SESSION_PENDING)
    if not isinstance(state, dict):
        return None
    user_id, since = state.get("user"), state.get("since")
    user = User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None
    if user is None or not isinstance(since, int | float):
        request.session.pop(SESSION_PENDING, None)
        return None
    pending_seconds = get_policy().security.mfa_pending_minutes * 60
    if time.time() - float(since) > pending_seconds:
        request.session.pop(SESSION_PENDING, None)
        _record_refusal(user, "second factor not presented in time", limit_seconds=pending_seconds)
        raise PendingExpired
    next_url = state.get("next")
    return Pending(user=user, since=float(since), next_url=next_url if isinstance(next_url, str) else "")


def confirmed_device(user: User) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if they have enrolled one."""
    return cast(TOTPDevice | None, TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first())


def start_enrolment(*, user: User) -> TOTPDevice:
    """The user's unconfirmed TOTP device, created with the policy's step and tolerance if there is none yet.

    Reused across page loads, so the secret shown does not change while the user is setting up their app.
    """
    security = get_policy().security
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
        if device is not None and (
            device.step != security.totp_step_seconds or device.tolerance != security.totp_tolerance_steps
        ):
            device.step = security.totp_step_seconds
            device.tolerance = security.totp_tolerance_steps
            device.save(update_fields=["step", "tolerance"])
        if device is None:
            device = TOTPDevice.objects.create(
                user=user,
                name="authenticator",
                confirmed=False,
                step=security.totp_step_seconds,
                tolerance=security.totp_tolerance_steps,
            )
            record(
                action="mfa.enrolment_started",
                actor=user.username,
                roles=list(user.roles),
                object_type="totp_device",
                object_id=device.pk,
                details={"step_seconds": device.step, "tolerance_steps": device.tolerance},
            )
    return cast(TOTPDevice, device)


def provisioning_uri(device: TOTPDevice) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code, naming this appliance as the issuer."""
    issuer = str(settings.APPLIANCE_ID).replace(":", "")
    label = quote(f"{issuer}:{device.user.get_username()}")
    params = urlencode(
        {
            "secret": base32_secret(device),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": device.digits,
            "period": device.step,
        }
    )
    return f"otpauth://totp/{label}?{params}"


def base32_secret(device: TOTPDevice) -> str:
    """The device secret as authenticator apps expect it typed in (base32, no padding)."""
    return b32encode(device.bin_key).decode("ascii").rstrip("=")


def _refuse_if_barred(user: User) -> Attempt | None:
    """Inside the caller's transaction: refuse (and record) a pending sign-in whose account was locked or disabled
    after its password was accepted, before any code is checked or any device changed."""
    current = User.objects.select_for_update().get(pk=user.pk)
    if not current.is_locked and current.is_active:
        return None
    reason = "locked" if current.is_locked else "disabled"
    record(
        action="auth.login",
        outcome="denied",
        actor=current.username,
        roles=list(current.roles),
        object_type="user",
        object_id=current.username,
        details={"reason": reason, "method": TWO_FACTOR},
    )
    return Attempt(user=None, reason=reason)


def _checked_device(pending: Pending, code: str, *, confirmed: bool) -> TOTPDevice | Attempt:
    """The pending user's (confirmed or enrolling) device if `code` is right for it, else the refusal to return.

    Runs inside the caller's transaction; the device row is locked so that one code cannot be spent twice.
    """
    refusal = _refuse_if_barred(pending.user)
    if refusal is not None:
        return refusal
    device = TOTPDevice.objects.select_for_update().filter(user=pending.user, confirmed=confirmed).first()
    if device is None:
        return Attempt(user=None, reason="no second factor enrolled" if confirmed else "no enrolment in progress")
    if not device.verify_token(code):
        reason = "wrong second factor" if confirmed else "wrong second factor (enrolment)"
        return register_failure(user=pending.user, reason=reason)
    return device


def verify_second_factor(*, request: HttpRequest, pending: Pending, code: str) -> Attempt:
    """Check a TOTP code for a pending sign-in; a right code signs in, a wrong one counts toward the lockout."""
    with transaction.atomic():
        device = _checked_device(pending, code, confirmed=True)
        if isinstance(device, Attempt):
            return device
        if not complete_sign_in(request=request, user=pending.user, method=TWO_FACTOR, device=device):
            return Attempt(user=None, reason="locked or disabled")
    return Attempt(user=pending.user)


def confirm_enrolment(*, request: HttpRequest, pending: Pending, code: str) -> Attempt:
    """Confirm the pending user's new TOTP device with a code from it, which also completes their sign-in."""
    with transaction.atomic():
        device = _checked_device(pending, code, confirmed=False)
        if isinstance(device, Attempt):
            return device
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record(
            action="mfa.enrolled",
            actor=pending.user.username,
            roles=list(pending.user.roles),
            object_type="totp_device",
            object_id=device.pk,
            details={"kind": "totp", "step_seconds": device.step, "tolerance_steps": device.tolerance},
        )
        if not complete_sign_in(request=request, user=pending.user, method=TWO_FACTOR, device=device):
            return Attempt(user=None, reason="locked or disabled")
    return Attempt(user=pending.user)
