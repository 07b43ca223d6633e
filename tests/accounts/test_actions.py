"""Account actions: each success is the change plus exactly one audit record with its full parameters; each bad
input is one AccountError naming the problem, with nothing written at all (no user row, no audit row)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.sessions.models import Session

from appliance.access.denial import AccessDenied
from appliance.access.policy import get_policy
from appliance.accounts.actions import (
    AccountError,
    create_user,
    disable_user,
    enable_user,
    lock_user,
    set_clearance,
    set_roles,
    unlock_user,
)
from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.models import AuditRecord
from tests.conftest import STRONG_PASSWORD

NEW = {
    "username": "newbie",
    "display_name": "New Analyst",
    "roles": ["analyst"],
    "clearance": "SECRET",
    "compartments": ["ALPHA"],
    "password": STRONG_PASSWORD,
}


def body(record: AuditRecord) -> dict[str, Any]:
    return json.loads(record.canonical)


def exclusive_pair() -> list[str]:
    """Two roles the policy says nobody may hold together (the test names no role itself)."""
    return sorted(get_policy().mutually_exclusive[0])[:2]


@contextmanager
def writes_nothing() -> Iterator[None]:
    users, records = User.objects.count(), AuditRecord.objects.count()
    yield
    assert User.objects.count() == users
    assert AuditRecord.objects.count() == records


@contextmanager
def only_a_denial(actor: str, permission: str = "user.manage") -> Iterator[None]:
    """Nothing changes but one `access.denied` record naming who was refused and the permission they lacked."""
    users = User.objects.count()
    with one_record("access.denied") as records:
        yield
    assert User.objects.count() == users
    entry = body(records[0])
    assert (entry["actor"], entry["outcome"], entry["details"]["permission"]) == (actor, "denied", permission)


@contextmanager
def one_record(action: str) -> Iterator[list[AuditRecord]]:
    """Exactly one audit record is appended inside the block, with this action; it is handed back afterwards."""
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    found: list[AuditRecord] = []
    yield found
    new = list(AuditRecord.objects.filter(seq__gt=-1 if last is None else last))
    assert [r.action for r in new] == [action]
    found.extend(new)


def signed_in_session(client, user: User) -> str:
    client.force_login(user)
    return client.session.session_key


# --- create_user --------------------------------------------------------------------------------------------------


def test_create_user_stores_the_account_and_audits_every_parameter(admin_user):
    """V-222413: account creation is audited, by whom, with the roles, clearance and compartments granted."""
    with one_record("user.create") as records:
        user = create_user(**NEW, by=admin_user)
    user.refresh_from_db()
    assert (user.roles, user.clearance, user.compartments) == (["analyst"], "SECRET", ["ALPHA"])
    assert user.check_password(STRONG_PASSWORD)
    assert user.is_active
    assert not user.is_locked
    entry = body(records[0])
    assert entry["actor"] == "adm"
    assert entry["roles"] == ["admin"]
    assert entry["object"] == {"type": "user", "id": "newbie"}
    assert entry["details"] == {
        "username": "newbie",
        "display_name": "New Analyst",
        "roles": ["analyst"],
        "clearance": "SECRET",
        "compartments": ["ALPHA"],
        "active": True,
        "locked": False,
    }


def test_create_user_never_writes_the_password_to_the_audit_log(admin_user):
    """V-222444-style: the record carries parameters, never the secret (nor its hash)."""
    with one_record("user.create") as records:
        user = create_user(**NEW, by=admin_user)
    assert STRONG_PASSWORD not in records[0].canonical
    assert user.password not in records[0].canonical
    assert "password" not in records[0].canonical


def test_console_creation_is_attributed_to_the_operating_system_login(db):
    with audit_context(AuditContext(component="cli", actor="os:root")), one_record("user.create") as records:
        create_user(**NEW, by=None)
    entry = body(records[0])
    assert (entry["actor"], entry["component"]) == ("os:root", "cli")


BAD_INPUTS = [
    pytest.param({"roles": ["wizard"]}, "unknown role(s): wizard", id="unknown-role"),
    pytest.param({"roles": []}, "at least one role", id="no-role"),
    pytest.param({"clearance": "COSMIC"}, "unknown clearance level 'COSMIC'", id="unknown-level"),
    pytest.param({"compartments": ["ZULU"]}, "unknown compartment(s): ZULU", id="unknown-compartment"),
    pytest.param({"roles": "EXCLUSIVE"}, "mutually exclusive (separation of duties)", id="exclusive-roles"),
    pytest.param({"password": "short"}, "must be at least 15 characters", id="short-password"),
    pytest.param({"password": "all-lower-case-and-long-1"}, "upper-case letter", id="weak-password"),
    pytest.param({"username": "a" * 65}, "is invalid: 2 to 64 characters", id="long-username"),
    pytest.param({"username": "Robert"}, "is invalid", id="upper-case-username"),
    pytest.param({"username": "bob smith"}, "is invalid", id="username-with-space"),
    pytest.param({"username": "adm"}, "username 'adm' is already taken", id="duplicate-username"),
    pytest.param({"display_name": "x" * 151}, "display name is too long", id="long-display-name"),
]


@pytest.mark.parametrize(("change", "problem"), BAD_INPUTS)
def test_create_user_refuses_bad_input_and_writes_nothing(admin_user, change, problem):
    """V-222413/V-222421: an invalid account is never created, half-created or recorded as created."""
    params = {**NEW, **change}
    if params["roles"] == "EXCLUSIVE":
        params["roles"] = exclusive_pair()
    with writes_nothing(), pytest.raises(AccountError) as caught:
        create_user(**params, by=admin_user)
    assert problem in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_user_without_user_manage_cannot_create_accounts_and_the_refusal_is_audited(analyst):
    with only_a_denial("ana"), pytest.raises(AccessDenied):
        create_user(**NEW, by=analyst)
    assert not User.objects.filter(username="newbie").exists()


def test_a_web_request_can_never_act_as_the_console(db):
    with audit_context(AuditContext(component="web", actor="os:root")), writes_nothing(), pytest.raises(RuntimeError):
        create_user(**NEW, by=None)


# --- roles and clearance ------------------------------------------------------------------------------------------


def test_set_roles_replaces_the_roles_and_audits_before_and_after(admin_user, analyst):
    """V-222414: account modification is audited with the old and new privileges."""
    with one_record("user.set_roles") as records:
        set_roles(analyst, roles=["reviewer", "analyst", "reviewer"], by=admin_user)
    analyst.refresh_from_db()
    assert analyst.roles == ["analyst", "reviewer"]
    assert body(records[0])["details"] == {
        "username": "ana",
        "roles_before": ["analyst"],
        "roles_after": ["analyst", "reviewer"],
    }


def test_set_roles_refuses_mutually_exclusive_roles(admin_user, analyst):
    with writes_nothing(), pytest.raises(AccountError, match="mutually exclusive"):
        set_roles(analyst, roles=exclusive_pair(), by=admin_user)
    analyst.refresh_from_db()
    assert analyst.roles == ["analyst"]


def test_nobody_changes_their_own_roles(admin_user):
    """Separation of duties: an administrator cannot grant themselves a role that reads imagery."""
    with writes_nothing(), pytest.raises(AccountError, match="your own account"):
        set_roles(admin_user, roles=["admin", "analyst"], by=admin_user)


def test_set_roles_needs_user_manage(analyst, reviewer):
    with only_a_denial("ana"), pytest.raises(AccessDenied):
        set_roles(reviewer, roles=["analyst"], by=analyst)
    reviewer.refresh_from_db()
    assert reviewer.roles == ["reviewer"]


def test_set_clearance_changes_level_and_compartments_and_audits_both(admin_user, analyst):
    with one_record("user.set_clearance") as records:
        set_clearance(analyst, level="TOP SECRET", compartments=["BRAVO", "ALPHA"], by=admin_user)
    analyst.refresh_from_db()
    assert (analyst.clearance, analyst.compartments) == ("TOP SECRET", ["ALPHA", "BRAVO"])
    assert body(records[0])["details"] == {
        "username": "ana",
        "before": {"clearance": "SECRET", "compartments": ["ALPHA"]},
        "after": {"clearance": "TOP SECRET", "compartments": ["ALPHA", "BRAVO"]},
    }


@pytest.mark.parametrize(
    ("level", "compartments", "problem"),
    [("COSMIC", [], "unknown clearance level"), ("SECRET", ["ZULU"], "unknown compartment(s): ZULU")],
)
def test_set_clearance_refuses_what_the_policy_does_not_define(admin_user, analyst, level, compartments, problem):
    with writes_nothing(), pytest.raises(AccountError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        set_clearance(analyst, level=level, compartments=compartments, by=admin_user)
    analyst.refresh_from_db()
    assert (analyst.clearance, analyst.compartments) == ("SECRET", ["ALPHA"])


# --- lock, unlock, disable, enable --------------------------------------------------------------------------------


def test_lock_user_locks_and_ends_the_sessions(client, admin_user, analyst):
    key = signed_in_session(client, analyst)
    with one_record("user.lock") as records:
        lock_user(analyst, reason="suspected compromise", by=admin_user)
    analyst.refresh_from_db()
    assert analyst.is_locked
    assert not Session.objects.filter(session_key=key).exists()
    assert body(records[0])["details"] == {
        "username": "ana",
        "was_locked": False,
        "reason": "suspected compromise",
        "sessions_ended": 1,
    }


def test_unlock_user_clears_the_lock_and_the_failure_count(admin_user, analyst):
    """V-222433: only an administrator releases a lock, and the failure window starts afresh."""
    User.objects.filter(pk=analyst.pk).update(
        locked_at="2026-01-01T00:00:00Z", failed_logins=3, first_failed_login_at="2026-01-01T00:00:00Z"
    )
    analyst.refresh_from_db()
    with one_record("user.unlock") as records:
        unlock_user(analyst, by=admin_user)
    analyst.refresh_from_db()
    assert (analyst.locked_at, analyst.failed_logins, analyst.first_failed_login_at) == (None, 0, None)
    assert body(records[0])["details"] == {"username": "ana", "was_locked": True, "failed_logins_cleared": 3}


def test_disable_user_disables_and_terminates_every_session_at_once(admin_user, analyst, client):
    """V-222415 (disabling is audited) and server-side termination: the session row is gone, not just expired."""
    other = type(client)()
    keys = [signed_in_session(client, analyst), signed_in_session(other, analyst)]
    admin_key = signed_in_session(type(client)(), admin_user)
    with one_record("user.disable") as records:
        disable_user(analyst, by=admin_user)
    analyst.refresh_from_db()
    assert not analyst.is_active
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert Session.objects.filter(session_key=admin_key).exists()
    assert body(records[0])["details"] == {"username": "ana", "was_active": True, "sessions_ended": 2}


def test_enable_user_re_enables_and_keeps_a_lock(admin_user, analyst):
    User.objects.filter(pk=analyst.pk).update(is_active=False, locked_at="2026-01-01T00:00:00Z")
    analyst.refresh_from_db()
    with one_record("user.enable") as records:
        enable_user(analyst, by=admin_user)
    analyst.refresh_from_db()
    assert analyst.is_active
    assert analyst.is_locked
    assert body(records[0])["details"] == {"username": "ana", "was_active": False, "locked": True}


@pytest.mark.parametrize("action", [lock_user, unlock_user, disable_user, enable_user])
def test_state_changes_need_user_manage(analyst, reviewer, action):
    with only_a_denial("ana"), pytest.raises(AccessDenied):
        action(reviewer, by=analyst)
    reviewer.refresh_from_db()
    assert reviewer.is_active
    assert not reviewer.is_locked


@pytest.mark.parametrize("action", [lock_user, disable_user])
def test_nobody_shuts_their_own_account(admin_user, action):
    with writes_nothing(), pytest.raises(AccountError, match="your own account"):
        action(admin_user, by=admin_user)


def test_a_refused_account_action_is_audited_in_a_committed_transaction_of_its_own(committed_db):
    """Every denial is an audit record that survives: here nothing wraps the test, so the record really commits."""
    with audit_context(AuditContext(component="cli", actor="os:root")):
        target = create_user(**NEW, by=None)
        intruder = create_user(**{**NEW, "username": "intruder"}, by=None)
    before = AuditRecord.objects.count()
    with pytest.raises(AccessDenied):
        lock_user(target, by=intruder)
    denials = list(AuditRecord.objects.filter(action="access.denied"))
    assert AuditRecord.objects.count() == before + 1
    assert len(denials) == 1
    entry = body(denials[0])
    assert (entry["actor"], entry["outcome"]) == ("intruder", "denied")
    assert entry["details"] == {"permission": "user.manage", "gate": "role"}
    assert entry["object"] == {"type": "user", "id": "newbie"}
    target.refresh_from_db()
    assert not target.is_locked
