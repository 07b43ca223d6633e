"""`manage.py demo_users`: one account per policy role, passwords printed once, idempotent, audited."""

from __future__ import annotations

import getpass
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.accounts.passwords import password_problems
from appliance.auditlog.models import AuditRecord

CREATED = re.compile(r"^created (\S+) \((\S+), cleared (\S+(?: \S+)?)\)  password: (\S+)$")


def run() -> str:
    out = io.StringIO()
    call_command("demo_users", stdout=out)
    return out.getvalue()


def created_lines(output: str) -> dict[str, tuple[str, str, str]]:
    return {m[1]: (m[2], m[3], m[4]) for m in map(CREATED.match, output.splitlines()) if m}


def handles_objects(role_name: str) -> bool:
    policy = get_policy()
    return any(policy.permissions[p].scope == "object" for p in policy.roles[role_name].permissions)


def test_it_creates_one_account_per_policy_role_with_a_compliant_password(db):
    output = run()
    lines = created_lines(output)
    assert set(lines) == {f"demo-{role}" for role in get_policy().roles}
    for username, (role, _cleared, password) in lines.items():
        user = User.objects.get(username=username)
        assert user.roles == [role]
        assert user.display_name
        assert password_problems(password) == []
        assert user.check_password(password)
        assert output.count(password) == 1
    passwords = [password for _, _, password in lines.values()]
    assert len(set(passwords)) == len(passwords)


def test_roles_that_label_imagery_are_cleared_secret_alpha_and_the_others_least_privilege(db):
    run()
    for role in get_policy().roles:
        user = User.objects.get(username=f"demo-{role}")
        if handles_objects(role):
            assert (user.clearance, user.compartments) == ("SECRET", ["ALPHA"])
        else:
            assert (user.clearance, user.compartments) == (get_policy().classification.page_level, [])


def test_a_second_run_creates_nothing_and_prints_no_password(db):
    first = run()
    before = (User.objects.count(), AuditRecord.objects.count())
    second = run()
    assert (User.objects.count(), AuditRecord.objects.count()) == before
    assert created_lines(second) == {}
    assert "password" not in second
    for role in get_policy().roles:
        assert f"demo-{role} exists; left unchanged" in second
    for _, _, password in created_lines(first).values():
        assert password not in second


def test_it_fills_in_only_the_missing_accounts_and_leaves_existing_ones_alone(analyst, admin_user):
    role = next(iter(get_policy().roles))
    existing = User.objects.create(username=f"demo-{role}", roles=[role], clearance="UNCLASSIFIED")
    lines = created_lines(run())
    assert f"demo-{role}" not in lines
    assert len(lines) == len(get_policy().roles) - 1
    existing.refresh_from_db()
    assert existing.clearance == "UNCLASSIFIED"


def test_each_creation_is_audited_like_create_user_from_the_console(db):
    """V-222413: every account it makes is an audited creation by the OS login that ran the command."""
    run()
    records = [json.loads(r.canonical) for r in AuditRecord.objects.filter(action="user.create")]
    assert sorted(r["object"]["id"] for r in records) == sorted(f"demo-{role}" for role in get_policy().roles)
    for entry in records:
        assert (entry["actor"], entry["component"]) == (f"os:{getpass.getuser()}", "cli")
        assert "password" not in json.dumps(entry)
    assert AuditRecord.objects.count() == len(records)


def test_it_is_refused_in_production(db, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="refused in production"):
        run()
    assert not User.objects.exists()
