"""Every change to an account or an API token: verb-first, keyword-only actions that validate against the policy.

Why one module owns these writes: each one is a privileged action that the STIG wants attributable and complete in
the audit log (V-222413..15, V-222421, V-222467, V-222478). So every action here

* refuses an acting user who lacks the permission (an audited 404 through `appliance.access.denial.deny`);
* validates every input against the policy in force *before* it writes anything, and on a bad input raises one
  `AccountError` naming the problem: no user row, no audit row, nothing half-done;
* runs in one `transaction.atomic()` together with its audit record, whose details carry the full parameters
  (never a password or a token secret: the recorder refuses such keys outright).

`by` is the acting user; `None` means the operator at the appliance's console (`manage.py`), whose identity
(`os:<login>`) the command puts in the audit context. Shell access to the host is that operator's authority, so
no role gate applies, but a web or API request can never act as `None`.

This module never decides who may see imagery and never names a role: roles, levels and compartments are data
from `policies/`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from appliance.access.decision import decide
from appliance.access.denial import AccessDenied, deny
from appliance.access.policy import Policy, get_policy
from appliance.accounts.models import USERNAME_PATTERN, ApiToken, User
from appliance.accounts.passwords import password_problems
from appliance.accounts.tokens import digest_of, new_token_secret
from appliance.auditlog.context import audit_context, current
from appliance.auditlog.recorder import record
from appliance.auditlog.sequencer import format_time

MANAGE_PERMISSION = "user.manage"
SELF_PERMISSION = "account.self"
TOKEN_PREFIX_LENGTH = 12  # "apl_" and 8 random characters: enough to tell tokens apart, useless to an attacker
_USERNAME = re.compile(USERNAME_PATTERN)
_DISPLAY_NAME_MAX = User._meta.get_field("display_name").max_length or 150
_TOKEN_NAME_MAX = ApiToken._meta.get_field("name").max_length or 100
# Components whose requests always carry a signed-in user: they may never act as the console operator.
_REQUEST_COMPONENTS = frozenset({"web", "api"})


class AccountError(ValueError):
    """A refused account change; the message names the problem in words an administrator can act on."""


# --- reads the actions share -------------------------------------------------------------------------------------


def account_named(username: str) -> User:
    """The user called `username`, or AccountError naming the missing one (for the console, which knows names)."""
    user = User.objects.filter(username=username).first()
    if user is None:
        raise AccountError(f"no user named {username!r}")
    return user


def account_state(user: User) -> str:
    """One word for lists: a disabled account is "disabled" even when it is also locked."""
    if not user.is_active:
        return "disabled"
    if user.is_locked:
        return "locked"
    return "active"


def token_state(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= timezone.now():
        return "expired"
    return "active"


# --- validation: every problem is found before anything is written ----------------------------------------------


def _check_username(username: str) -> None:
    if not _USERNAME.match(username):
        raise AccountError(
            f"username {username[:80]!r} is invalid: 2 to 64 characters, starting with a lower-case letter, "
            "then lower-case letters, digits, '.', '_' or '-'"
        )
    if User.objects.filter(username=username).exists():
        raise AccountError(f"username {username!r} is already taken")


def _check_display_name(display_name: str) -> None:
    if len(display_name) > _DISPLAY_NAME_MAX:
        raise AccountError(f"display name is too long: at most {_DISPLAY_NAME_MAX} characters")
    if any(not character.isprintable() for character in display_name):
        raise AccountError("display name may not contain control characters")


def _checked_roles(policy: Policy, roles: Iterable[str]) -> list[str]:
    """The sorted, de-duplicated roles, once each is known and no separation-of-duties set is held twice."""
    wanted = sorted(set(roles))
    if not wanted:
        raise AccountError("at least one role is required")
    unknown = [role for role in wanted if role not in policy.roles]
    if unknown:
        known = ", ".join(sorted(policy.roles))
        raise AccountError(f"unknown role(s): {', '.join(unknown)} (the policy defines: {known})")
    for exclusive in policy.mutually_exclusive:
        held = sorted(exclusive.intersection(wanted))
        if len(held) > 1:
            raise AccountError(
                f"roles {' and '.join(held)} are mutually exclusive (separation of duties): grant only one"
            )
    return wanted


def _checked_clearance(policy: Policy, level: str, compartments: Iterable[str]) -> list[str]:
    """The sorted compartments, once the level and every compartment are known to the classification policy."""
    classification = policy.classification
    if level not in {known.name for known in classification.levels}:
        known_levels = ", ".join(known.name for known in classification.levels)
        raise AccountError(f"unknown clearance level {level!r} (the policy defines: {known_levels})")
    wanted = sorted(set(compartments))
    unknown = [name for name in wanted if name not in classification.compartments]
    if unknown:
        known = ", ".join(sorted(classification.compartments)) or "none"
        raise AccountError(f"unknown compartment(s): {', '.join(unknown)} (the policy defines: {known})")
    return wanted


def _check_password(password: str) -> None:
    problems = password_problems(password)
    if problems:
        raise AccountError("the password " + "; ".join(problems))


# --- who acts ----------------------------------------------------------------------------------------------------


def _authorize(by: User | None, permission: str, *, object_type: str, object_id: str) -> None:
    """Refuse an acting user without `permission` (audited 404); let the console operator through."""
    if by is None:
        context = current()
        if context.component in _REQUEST_COMPONENTS or not context.actor:
            raise RuntimeError(
                "an account action without an acting user must run in a console audit context (component 'cli')"
            )
        return
    decision = decide(by, permission)
    if not decision:
        raise _refusal(by, permission=permission, gate=decision.gate, object_type=object_type, object_id=object_id)


def _refusal(by: User, *, permission: str, gate: str, object_type: str, object_id: str) -> AccessDenied:
    """The audited 404, attributed to `by` even where no request context names them (a script, a job)."""
    with audit_context(replace(current(), actor=by.username, roles=tuple(by.roles))):
        return deny(permission=permission, gate=gate, object_type=object_type, object_id=object_id)


def _refuse_on_self(by: User | None, target: User, what: str) -> None:
    """Nobody changes their own privileges or shuts their own account: it would let one person escalate alone."""
    if by is not None and by.pk == target.pk:
        raise AccountError(f"you may not {what} your own account (separation of duties): ask another administrator")


def _record(by: User | None, **fields: Any) -> None:
    """The audit record, attributed to `by` when a user acts (even outside a request), else to the context."""
    if by is None:
        record(**fields)
    else:
        record(actor=by.username, roles=list(by.roles), **fields)


def _locked_row(target: User) -> User:
    """Re-read `target` under a row lock so that two administrators' changes serialise instead of interleaving."""
    return User.objects.select_for_update().get(pk=target.pk)


def _end_sessions(user: User) -> int:
    """Delete every server-side session of `user` so that the change takes effect now, not at the next login."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            session.delete()
            ended += 1
    return ended


# --- users -------------------------------------------------------------------------------------------------------


def create_user(
    *,
    username: str,
    display_name: str = "",
    roles: Sequence[str],
    clearance: str,
    compartments: Sequence[str] = (),
    password: str,
    by: User | None,
) -> User:
    """Create an account with its roles, clearance and first password (V-222413: account creation is audited)."""
    _authorize(by, MANAGE_PERMISSION, object_type="user", object_id=username)
    policy = get_policy()
    _check_username(username)
    _check_display_name(display_name)
    checked_roles = _checked_roles(policy, roles)
    checked_compartments = _checked_clearance(policy, clearance, compartments)
    _check_password(password)
    user = User(
        username=username,
        display_name=display_name,
        roles=checked_roles,
        clearance=clearance,
        compartments=checked_compartments,
        password_changed_at=timezone.now(),
    )
    user.set_password(password)
    try:
        user.full_clean(exclude=["password", "roles", "compartments"])  # those two: checked above
    except ValidationError as exc:  # a constraint the checks above missed: refuse rather than store
        raise AccountError(f"account {username!r} is invalid: {exc.messages[0]}") from exc
    try:
        with transaction.atomic():
            user.save()
            _record(
                by,
                action="user.create",
                object_type="user",
                object_id=username,
                details={**user.describe(), "display_name": display_name},
            )
    except IntegrityError as exc:  # another administrator created the same name a moment ago
        raise AccountError(f"username {username!r} is already taken") from exc
    return user


def set_roles(target: User, *, roles: Sequence[str], by: User | None) -> User:
    """Replace the account's roles (V-222414: modification is audited, with the roles before and after)."""
    _authorize(by, MANAGE_PERMISSION, object_type="user", object_id=target.username)
    _refuse_on_self(by, target, "change the roles of")
    wanted = _checked_roles(get_policy(), roles)
    with transaction.atomic():
        user = _locked_row(target)
        before = sorted(user.roles)
        user.roles = wanted
        user.save(update_fields=["roles"])
        _record(
            by,
            action="user.set_roles",
            object_type="user",
            object_id=user.username,
            details={"username": user.username, "roles_before": before, "roles_after": wanted},
        )
    return user


def set_clearance(target: User, *, level: str, compartments: Sequence[str], by: User | None) -> User:
    """Set the clearance level and compartments the label gate compares against (audited before and after)."""
    _authorize(by, MANAGE_PERMISSION, object_type="user", object_id=target.username)
    _refuse_on_self(by, target, "change the clearance of")
    wanted = _checked_clearance(get_policy(), level, compartments)
    with transaction.atomic():
        user = _locked_row(target)
        before = {"clearance": user.clearance, "compartments": sorted(user.compartments)}
        user.clearance = level
        user.compartments = wanted
        user.save(update_fields=["clearance", "compartments"])
        _record(
            by,
            action="user.set_clearance",
            object_type="user",
            object_id=user.username,
            details={
                "username": user.username,
                "before": before,
                "after": {"clearance": level, "compartments": wanted},
            },
        )
    return user


def lock_user(target: User, *, reason: str = "", by: User | None) -> User:
    """Lock the account until an administrator unlocks it, and end its sessions now."""
    _authorize(by, MANAGE_PERMISSION, object_type="user", object_id=target.username)
    _refuse_on_self(by, target, "lock")
    with transaction.atomic():
        user = _locked_row(target)
        was_locked = user.is_locked
        if not was_locked:
            user.locked_at = timezone.now()
            user.save(update_fields=["locked_at"])
        ended = _end_sessions(user)
        _record(
            by,
            action="user.lock",
            object_type="user",
            object_id=user.username,
            details={"username": user.username, "was_locked": was_locked, "reason": reason, "sessions_ended": ended},
        )
    return user


def unlock_user(target: User, *, by: User | None) -> User:
    """Release a lock: the only way out of one (V-222433), so the failure count and window start afresh too."""
    _authorize(by, MANAGE_PERMISSION, object_type="user", object_id=target.username)
    _refuse_on_self(by, target, "unlock")
    with transaction.atomic():
        user = _locked_row(target)
        details = {
            "username": user.username,
            "was_locked": user.is_locked,
            "failed_logins_cleared": user.failed_logins,
        }
        user.locked_at = None
        user.failed_logins = 0
        user.first_failed_login_at = None
        user.save(update_fields=["locked_at", "failed_logins", "first_failed_login_at"])
        _record(by, action="user.unlock", object_type="user", object_id=user.username, details=details)
    return user


def disable_user(target: User, *, by: User | None) -> User:
    """Disable the account (V-222415) and terminate its sessions at once, not at their next timeout."""
    return _set_active(target, by=by, active=False)


def enable_user(target: User, *, by: User | None) -> User:
    """Re-enable a disabled account (V-222421); a lock, if any, stays until it is released separately."""
    return _set_active(target, by=by, active=True)


def _set_active(target: User, *, by: User | None, active: bool) -> User:
    verb = "enable" if active else "disable"
    _authorize(by, MANAGE_PERMISSION, object_type="user", object_id=target.username)
    _refuse_on_self(by, target, verb)
    with transaction.atomic():
        user = _locked_row(target)
        details: dict[str, Any] = {"username": user.username, "was_active": user.is_active}
        user.is_active = active
        user.save(update_fields=["is_active"])
        if active:
            details["locked"] = user.is_locked
        else:
            details["sessions_ended"] = _end_sessions(user)
        _record(by, action=f"user.{verb}", object_type="user", object_id=user.username, details=details)
    return user


# --- personal API tokens -----------------------------------------------------------------------------------------


def create_api_token(user: User, *, name: str, lifetime_days: int | None = None) -> tuple[ApiToken, str]:
    """Issue a token to `user` (who acts for themselves) and return it with its secret, which is never stored:
    only its SHA-256 is kept, so the caller shows the secret once and it can never be shown again."""
    _authorize(user, SELF_PERMISSION, object_type="api_token", object_id="")
    security = get_policy().security
    days = security.token_default_lifetime_days if lifetime_days is None else lifetime_days
    name = name.strip()
    if not name:
        raise AccountError("a token needs a name, so that its owner can tell it apart and revoke the right one")
    if len(name) > _TOKEN_NAME_MAX or any(not character.isprintable() for character in name):
        raise AccountError(f"token name must be at most {_TOKEN_NAME_MAX} printable characters")
    if not 1 <= days <= security.token_max_lifetime_days:
        raise AccountError(
            f"token lifetime must be from 1 to {security.token_max_lifetime_days} days "
            "(policy tokens.max_lifetime_days)"
        )
    secret = new_token_secret()
    now = timezone.now()
    token = ApiToken(
        user=user,
        name=name,
        prefix=secret[:TOKEN_PREFIX_LENGTH],
        digest=digest_of(secret),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    with transaction.atomic():
        token.save()
        _record(
            user,
            action="token.create",
            object_type="api_token",
            object_id=str(token.pk),
            details={
                "owner": user.username,
                "name": name,
                "prefix": token.prefix,
                "lifetime_days": days,
                "expires_at": format_time(token.expires_at),
            },
        )
    return token, secret


def revoke_api_token(user: User, *, token_id: int) -> ApiToken:
    """Revoke one of `user`'s own tokens. Someone else's id, or a missing one, is an audited 404 alike, so that
    nobody learns which token ids exist."""
    _authorize(user, SELF_PERMISSION, object_type="api_token", object_id=str(token_id))
    if not ApiToken.objects.filter(pk=token_id, user=user).exists():
        raise _refusal(
            user, permission=SELF_PERMISSION, gate="ownership", object_type="api_token", object_id=str(token_id)
        )
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
        was_revoked = token.revoked_at is not None
        if not was_revoked:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        _record(
            user,
            action="token.revoke",
            object_type="api_token",
            object_id=str(token.pk),
            details={"owner": user.username, "name": token.name, "prefix": token.prefix, "was_revoked": was_revoked},
        )
    return token
