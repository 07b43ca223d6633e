"""Session lifetime: idle limits by role (V-222389, V-222390), the absolute lifetime, audited timeouts (V-222445)
and sign-out that destroys the session server-side (V-222391, V-222392, V-222578)."""

from __future__ import annotations

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from appliance.access.policy import get_policy
from appliance.accounts.middleware import idle_limit_seconds
from tests.accounts import (
    CONSENT_URL,
    HOME_URL,
    LOGOUT_URL,
    SIGNED_OUT_URL,
    enrolled_device,
    is_signed_in,
    records,
    sign_in_through_forms,
)
from tests.conftest import sign_in

START = "2026-03-02 08:00:00Z"


def test_idle_limits_come_from_the_policy_and_the_smallest_role_limit_wins():
    """V-222389: 15 minutes by default; V-222390: privileged roles less, and a user's strictest role decides."""
    security = get_policy().security
    privileged = dict(security.idle_minutes_by_role)
    assert security.idle_minutes == 15
    assert privileged == {"admin": 10}
    assert idle_limit_seconds(["analyst"]) == 15 * 60
    assert idle_limit_seconds(["admin"]) == 10 * 60
    assert idle_limit_seconds(["analyst", "admin"]) == 10 * 60
    assert idle_limit_seconds([]) == 15 * 60


@pytest.mark.parametrize(("idle_seconds", "still_signed_in"), [(15 * 60, True), (15 * 60 + 1, False)])
def test_an_analyst_is_signed_out_after_15_idle_minutes(client, analyst, idle_seconds, still_signed_in):
    """V-222389: at 15:00 idle the session lives; at 15:01 it is destroyed and the timeout audited (V-222445)."""
    with time_machine.travel(START, tick=False) as clock:
        sign_in_through_forms(client, analyst)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        audit_session = client.session["audit_session"]
        clock.shift(idle_seconds)
        response = client.get(HOME_URL)
    if still_signed_in:
        assert response.status_code == 200
        assert not records("session.timeout")
        return
    assert response.status_code == 302
    assert response["Location"].startswith(CONSENT_URL)
    assert not Session.objects.filter(session_key=key).exists()
    [body] = records("session.timeout")
    assert body["actor"] == "ana"
    assert body["roles"] == ["analyst"]
    assert body["session"] == audit_session
    assert body["details"] == {"reason": "idle", "idle_seconds": 15 * 60 + 1}
    assert not is_signed_in(client)
    notice = client.get(response["Location"]).content.decode()
    assert "Your session ended after a period of inactivity" in notice


@pytest.mark.parametrize(("idle_seconds", "still_signed_in"), [(10 * 60, True), (10 * 60 + 1, False)])
def test_an_admin_is_signed_out_after_10_idle_minutes(client, admin_user, idle_seconds, still_signed_in):
    """V-222390: the privileged role's shorter limit applies (signed in with password and TOTP code)."""
    enrolled_device(admin_user)
    with time_machine.travel(START, tick=False) as clock:
        sign_in_through_forms(client, admin_user)
        clock.shift(idle_seconds)
        response = client.get(HOME_URL)
    assert (response.status_code == 200) is still_signed_in
    timeouts = records("session.timeout")
    if still_signed_in:
        assert not timeouts
    else:
        [body] = timeouts
        assert (body["actor"], body["details"]["reason"]) == ("adm", "idle")


def test_activity_keeps_the_session_alive(client, analyst):
    """V-222389 counts idle time from the last request, not from sign-in."""
    with time_machine.travel(START, tick=False) as clock:
        sign_in_through_forms(client, analyst)
        for _ in range(4):
            clock.shift(14 * 60)
            assert client.get(HOME_URL).status_code == 200


def test_the_absolute_lifetime_ends_even_an_active_session(client, analyst):
    """The session ends `session.absolute_hours` after sign-in however active it is, and that is audited."""
    hours = get_policy().security.absolute_hours
    with time_machine.travel(START, tick=False) as clock:
        sign_in_through_forms(client, analyst)
        for _ in range(hours * 60 // 14):  # a request every 14 minutes, never idle for long
            clock.shift(14 * 60)
            assert client.get(HOME_URL).status_code == 200
        clock.shift(14 * 60)
        response = client.get(HOME_URL)
    assert response.status_code == 302
    [body] = records("session.timeout")
    assert (body["actor"], body["details"]["reason"]) == ("ana", "absolute")
    assert not is_signed_in(client)


def test_a_session_without_a_sign_in_time_is_ended(client, analyst):
    """A signed-in session the sign-in flow did not make (no clocks to enforce) is not trusted."""
    client.force_login(analyst)
    response = client.get(HOME_URL)
    assert response.status_code == 302
    [body] = records("session.timeout")
    assert body["details"]["reason"] == "no sign-in time"


def test_signing_out_destroys_the_session_and_says_so(client, analyst):
    """V-222391: sign-out is offered and works; V-222578: the session row is deleted server-side; V-222392: the
    user is told explicitly that the session has ended; the sign-out is audited."""
    sign_in_through_forms(client, analyst)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    audit_session = client.session["audit_session"]
    response = client.post(LOGOUT_URL)
    assert response.status_code == 302
    assert response["Location"] == SIGNED_OUT_URL
    assert not Session.objects.filter(session_key=key).exists()
    page = client.get(SIGNED_OUT_URL)
    assert page.status_code == 200
    assert "You have been signed out" in page.content.decode()
    [body] = records("auth.logout")
    assert (body["actor"], body["session"], body["outcome"]) == ("ana", audit_session, "ok")
    assert not is_signed_in(client)


def test_the_old_session_cookie_is_worthless_after_sign_out(analyst):
    """V-222578: replaying the cookie of a signed-out session does not sign anyone in."""
    browser = Client()
    sign_in_through_forms(browser, analyst)
    stolen = browser.cookies[settings.SESSION_COOKIE_NAME].value
    browser.post(LOGOUT_URL)
    attacker = Client()
    attacker.cookies[settings.SESSION_COOKIE_NAME] = stolen
    assert attacker.get(HOME_URL).status_code == 302


def test_every_page_of_a_signed_in_user_offers_sign_out(client, analyst):
    """V-222391: a sign-out control is on the page shell."""
    sign_in(client, analyst)
    html = client.get(HOME_URL).content.decode()
    assert f'action="{LOGOUT_URL}"' in html
    assert "Sign out" in html


def test_sign_out_is_post_only(client, analyst):
    """A link or image on another page cannot sign a user out; GET is refused and changes nothing."""
    sign_in(client, analyst)
    assert client.get(LOGOUT_URL).status_code == 405
    assert is_signed_in(client)
    assert not records("auth.logout")


def test_sign_out_is_csrf_protected(analyst):
    """A forged cross-site POST without the CSRF token is refused and the session lives on."""
    browser = Client(enforce_csrf_checks=True)
    sign_in(browser, analyst)
    assert browser.post(LOGOUT_URL).status_code == 403
    assert is_signed_in(browser)
    assert not records("auth.logout")


def test_the_signed_out_page_does_not_claim_a_live_session_has_ended(client, analyst):
    """V-222392: the message is only shown when it is true."""
    sign_in(client, analyst)
    html = client.get(SIGNED_OUT_URL).content.decode()
    assert "You have been signed out" not in html
    assert "You are still signed in" in html
