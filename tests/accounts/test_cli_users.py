"""`manage.py users`: the console validates and audits exactly like the actions, names the operating-system
login that ran it, and on any error exits non-zero naming the problem, with nothing written."""

from __future__ import annotations

import getpass
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog.models import AuditRecord
from tests.conftest import STRONG_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
BAD_ROLE = ["--roles", "wizard", "--clearance", "SECRET", "--password-stdin"]
ADD = ["users", "add", "carol", "--roles", "analyst", "--clearance", "SECRET", "--password-stdin"]


def run(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    call_command(*args, stdin=io.StringIO(stdin), stdout=out)
    return out.getvalue()


def last_record() -> dict:
    return json.loads(AuditRecord.objects.order_by("-seq").first().canonical)


def counts() -> tuple[int, int]:
    return User.objects.count(), AuditRecord.objects.count()


def test_add_creates_the_account_with_the_password_from_stdin(db):
    output = run(*ADD, "--compartments", "ALPHA,BRAVO", "--display-name", "Carol C", stdin=STRONG_PASSWORD + "\n")
    carol = User.objects.get(username="carol")
    assert (carol.roles, carol.clearance, carol.compartments) == (["analyst"], "SECRET", ["ALPHA", "BRAVO"])
    assert carol.display_name == "Carol C"
    assert carol.check_password(STRONG_PASSWORD)
    assert "created carol" in output
    assert STRONG_PASSWORD not in output


def test_add_is_audited_as_the_operating_system_login_on_the_console(db):
    """V-222413 and attribution: the record names who ran the command and every parameter, never the password."""
    before = AuditRecord.objects.count()
    run(*ADD, stdin=STRONG_PASSWORD + "\n")
    assert AuditRecord.objects.count() == before + 1
    entry = last_record()
    assert entry["action"] == "user.create"
    assert entry["actor"] == f"os:{getpass.getuser()}"
    assert entry["component"] == "cli"
    assert entry["details"]["roles"] == ["analyst"]
    assert entry["details"]["clearance"] == "SECRET"
    assert STRONG_PASSWORD not in AuditRecord.objects.order_by("-seq").first().canonical


def exclusive_roles() -> str:
    return ",".join(sorted(get_policy().mutually_exclusive[0]))


@pytest.mark.parametrize(
    ("args", "stdin", "problem"),
    [
        pytest.param(["--roles", "wizard"], STRONG_PASSWORD, "unknown role(s): wizard", id="unknown-role"),
        pytest.param(["--clearance", "COSMIC"], STRONG_PASSWORD, "unknown clearance level", id="unknown-level"),
        pytest.param(["--compartments", "ZULU"], STRONG_PASSWORD, "unknown compartment(s)", id="unknown-compartment"),
        pytest.param(["--roles", "EXCLUSIVE"], STRONG_PASSWORD, "mutually exclusive", id="exclusive-roles"),
        pytest.param([], "weakpassword", "must be at least 15 characters", id="weak-password"),
        pytest.param([], "", "no password on standard input", id="no-password"),
    ],
)
def test_add_refuses_bad_input_and_writes_nothing(db, args, stdin, problem):
    command = ADD + [exclusive_roles() if a == "EXCLUSIVE" else a for a in args]
    before = counts()
    with pytest.raises(CommandError) as caught:
        run(*command, stdin=stdin + "\n" if stdin else "")
    assert problem in str(caught.value)
    assert counts() == before


@pytest.mark.parametrize(
    ("username", "problem"),
    [("x" * 65, "is invalid"), ("Carol", "is invalid"), ("ana", "already taken")],
    ids=["too-long", "upper-case", "duplicate"],
)
def test_add_refuses_a_bad_or_taken_username(analyst, username, problem):
    before = counts()
    command = ["users", "add", username, "--roles", "analyst", "--clearance", "SECRET", "--password-stdin"]
    with pytest.raises(CommandError, match=problem):
        run(*command, stdin=STRONG_PASSWORD + "\n")
    assert counts() == before


def test_add_without_password_stdin_refuses_a_non_terminal(db):
    before = counts()
    with pytest.raises(CommandError, match="pass --password-stdin"):
        run("users", "add", "carol", "--roles", "analyst", "--clearance", "SECRET", stdin=STRONG_PASSWORD)
    assert counts() == before


def test_lock_unlock_disable_enable_from_the_console(analyst):
    run("users", "lock", "ana")
    analyst.refresh_from_db()
    assert analyst.is_locked
    assert last_record()["action"] == "user.lock"
    run("users", "unlock", "ana")
    analyst.refresh_from_db()
    assert not analyst.is_locked
    assert last_record()["action"] == "user.unlock"
    run("users", "disable", "ana")
    analyst.refresh_from_db()
    assert not analyst.is_active
    assert last_record()["action"] == "user.disable"
    run("users", "enable", "ana")
    analyst.refresh_from_db()
    assert analyst.is_active
    entry = last_record()
    assert (entry["action"], entry["actor"], entry["component"]) == ("user.enable", f"os:{getpass.getuser()}", "cli")


def test_set_roles_and_clearance_from_the_console(analyst):
    run("users", "set-roles", "ana", "--roles", "reviewer")
    run("users", "set-clearance", "ana", "--clearance", "TOP SECRET", "--compartments", "BRAVO")
    analyst.refresh_from_db()
    assert (analyst.roles, analyst.clearance, analyst.compartments) == (["reviewer"], "TOP SECRET", ["BRAVO"])


@pytest.mark.parametrize("verb", ["lock", "unlock", "disable", "enable"])
def test_an_unknown_user_is_named_in_the_error(db, verb):
    before = counts()
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        run("users", verb, "ghost")
    assert counts() == before


def test_list_shows_every_account_with_roles_clearance_compartments_and_state(analyst, auditor, reviewer):
    run("users", "lock", "rev")
    run("users", "disable", "aud")
    lines = run("users", "list").splitlines()
    assert lines[0].split() == ["USERNAME", "ROLES", "CLEARANCE", "COMPARTMENTS", "STATE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["ana"] == ["ana", "analyst", "SECRET", "ALPHA", "active"]
    assert rows["rev"] == ["rev", "reviewer", "SECRET", "ALPHA", "locked"]
    assert rows["aud"] == ["aud", "auditor", "UNCLASSIFIED", "-", "disabled"]
    assert last_record()["action"] == "user.list"


def _settings_module(tmp_path: Path) -> dict[str, str]:
    """An environment whose settings are the project's, pointed at this test run's database."""
    (tmp_path / "cli_test_settings.py").write_text(
        "from appliance.settings import *  # noqa: F403\n"
        f"DATABASES['default']['NAME'] = {str(settings.DATABASES['default']['NAME'])!r}\n"
    )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cli_test_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }


def test_a_real_manage_py_process_adds_a_user_and_fails_loudly_on_bad_input(committed_db, tmp_path):
    """The console as an operator uses it: a separate process, the password piped in, the exit status checked."""
    env = _settings_module(tmp_path)
    ok = subprocess.run(
        [sys.executable, "manage.py", *ADD],
        input=STRONG_PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "created carol" in ok.stdout
    assert User.objects.get(username="carol").check_password(STRONG_PASSWORD)
    assert last_record()["actor"] == f"os:{getpass.getuser()}"

    before = counts()
    bad = subprocess.run(
        [sys.executable, "manage.py", "users", "add", "dave", *BAD_ROLE],
        input=STRONG_PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode != 0
    assert "unknown role(s): wizard" in bad.stderr
    assert counts() == before
