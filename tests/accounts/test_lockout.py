"""Account lockout: exactly `lockout.max_failures` failures inside `lockout.window_minutes` lock the account
(V-222432), and it stays locked until an administrator unlocks it (V-222433)."""

from __future__ import annotations

import time_machine
from django.utils import timezone

from appliance.access.policy import get_policy
from appliance.accounts.actions import unlock_user
from tests.accounts import HOME_URL, is_signed_in, records, submit_password

WRONG = "Wrong-Horse-Battery-9"
START = "2026-03-02 08:00:00Z"


def fail(client, times: int = 1) -> None:
    for _ in range(times):
        response = submit_password(client, "ana", WRONG)
        assert response.status_code == 200


def test_the_policy_is_the_stig_one():
    """The numbers these tests rely on are the policy's: 3 failures in 15 minutes (V-222432)."""
    security = get_policy().security
    assert (security.lockout_max_failures, security.lockout_window_minutes) == (3, 15)


def test_two_failures_do_not_lock(client, analyst):
    """V-222432: one failure short of the limit leaves the account usable."""
    fail(client, 2)
    analyst.refresh_from_db()
    assert (analyst.failed_logins, analyst.locked_at) == (2, None)
    assert not records("account.locked")
    assert submit_password(client, "ana")["Location"] == HOME_URL


def test_the_third_failure_inside_the_window_locks_the_account(client, analyst):
    """V-222432: the third consecutive failure within 15 minutes locks the account, and the lock is audited."""
    with time_machine.travel(START, tick=False) as clock:
        fail(client)
        clock.shift(7 * 60)
        fail(client)
        clock.shift(7 * 60)
        fail(client)
    analyst.refresh_from_db()
    assert analyst.failed_logins == 3
    assert analyst.locked_at is not None
    [locked] = records("account.locked")
    assert (locked["outcome"], locked["actor"], locked["object"]) == ("ok", "ana", {"type": "user", "id": "ana"})
    assert [body["details"]["failures_in_window"] for body in records("auth.login")] == [1, 2, 3]


def test_failures_spread_over_more_than_the_window_do_not_lock(client, analyst):
    """V-222432: a failure older than the window starts a new window instead of adding to the old one."""
    with time_machine.travel(START, tick=False) as clock:
        fail(client)
        clock.shift(8 * 60)
        fail(client)
        clock.shift(8 * 60)  # 16 minutes after the first failure: that one no longer counts
        fail(client)
    analyst.refresh_from_db()
    assert analyst.locked_at is None
    assert analyst.failed_logins == 1
    assert not records("account.locked")


def test_a_locked_account_refuses_the_right_password(client, analyst):
    """V-222433: once locked, even the right password does not sign in; the refusal is audited as "locked"."""
    fail(client, 3)
    response = submit_password(client, "ana")
    assert response.status_code == 200
    assert "Sign-in failed" in response.content.decode()
    assert not is_signed_in(client)
    assert records("auth.login")[-1]["details"]["reason"] == "locked"


def test_a_locked_account_stays_locked_long_past_the_window(client, analyst):
    """V-222433: the lock does not time out; only an administrator's unlock lifts it."""
    with time_machine.travel(START, tick=False) as clock:
        fail(client, 3)
        clock.shift(16 * 60)
        assert submit_password(client, "ana").status_code == 200
        clock.shift(7 * 24 * 3600)
        assert submit_password(client, "ana").status_code == 200
        assert not is_signed_in(client)
    analyst.refresh_from_db()
    assert analyst.is_locked
    assert [body["details"]["reason"] for body in records("auth.login")][-2:] == ["locked", "locked"]


def test_a_failure_on_a_locked_account_does_not_extend_the_count(client, analyst):
    """A locked account is refused before its password matters: further attempts add nothing but their record."""
    fail(client, 4)
    analyst.refresh_from_db()
    assert analyst.failed_logins == 3
    assert len(records("account.locked")) == 1


def test_after_an_administrators_unlock_the_right_password_signs_in(client, analyst, admin_user):
    """V-222433: only the administrator's unlock action lifts the lock; after it the right password works."""
    fail(client, 3)
    analyst.refresh_from_db()
    unlock_user(analyst, by=admin_user)
    assert submit_password(client, "ana")["Location"] == HOME_URL


def test_a_successful_sign_in_resets_the_failure_count(client, analyst):
    """V-222432 counts consecutive failures: two, a success, two more does not lock."""
    fail(client, 2)
    assert submit_password(client, "ana")["Location"] == HOME_URL
    client.logout()
    analyst.refresh_from_db()
    assert (analyst.failed_logins, analyst.first_failed_login_at) == (0, None)
    fail(client, 2)
    analyst.refresh_from_db()
    assert analyst.locked_at is None
    assert analyst.first_failed_login_at <= timezone.now()
