"""The TOTP second factor of the roles the policy names (V-222523): enrolment, verification, lockout, expiry."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from appliance.access.policy import get_policy
from tests.accounts import (
    ENROL_URL,
    HOME_URL,
    LOGIN_URL,
    SECOND_FACTOR_URL,
    code_for,
    enrolled_device,
    is_signed_in,
    records,
    submit_password,
)

START = "2026-03-02 08:00:00Z"


def test_the_policy_asks_a_second_factor_of_the_privileged_roles():
    """V-222523: which roles need a second factor is policy; these tests rely on admin and auditor."""
    assert get_policy().security.mfa_required_for_roles == frozenset({"admin", "auditor"})


@pytest.mark.parametrize("persona", ["admin_user", "auditor"])
def test_a_right_password_alone_does_not_sign_in_a_privileged_user(client, request, persona):
    """V-222523: the password is only the first step for a role that requires a second factor."""
    user = request.getfixturevalue(persona)
    enrolled_device(user)
    response = submit_password(client, user.username)
    assert response.status_code == 302
    assert response["Location"] == SECOND_FACTOR_URL
    assert not is_signed_in(client)
    assert not records("auth.login")
    [body] = records("auth.password")
    assert (body["actor"], body["details"]) == (user.username, {"second_factor": "required"})


def test_the_right_code_completes_the_sign_in(client, admin_user):
    """V-222523: password and TOTP code together sign in; the session key is new and the record says how."""
    device = enrolled_device(admin_user)
    with time_machine.travel(START, tick=False):
        submit_password(client, "adm")
        pending_key = client.cookies[settings.SESSION_COOKIE_NAME].value
        response = client.post(SECOND_FACTOR_URL, {"code": code_for(device)})
        assert response.status_code == 302
        assert response["Location"] == HOME_URL
        assert is_signed_in(client)
        assert client.cookies[settings.SESSION_COOKIE_NAME].value != pending_key
        assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    [body] = records("auth.login")
    assert (body["outcome"], body["actor"], body["details"]["method"]) == ("ok", "adm", "password+totp")


def test_a_code_is_accepted_only_once(client, admin_user):
    """A code seen over someone's shoulder cannot be replayed within its time step."""
    device = enrolled_device(admin_user)
    with time_machine.travel(START, tick=False) as clock:
        code = code_for(device)
        submit_password(client, "adm")
        assert client.post(SECOND_FACTOR_URL, {"code": code})["Location"] == HOME_URL
        client.post("/accounts/logout")
        clock.shift(2)
        submit_password(client, "adm")
        response = client.post(SECOND_FACTOR_URL, {"code": code})
    assert response.status_code == 200
    assert "That code was not accepted" in response.content.decode()


def test_wrong_codes_count_toward_the_lockout(client, admin_user):
    """V-222432: a wrong second factor is a failed sign-in; the third in the window locks the account."""
    device = enrolled_device(admin_user)
    with time_machine.travel(START, tick=False) as clock:
        submit_password(client, "adm")
        for attempt in range(3):
            clock.shift(10)  # past django-otp's throttle delay, so each code is really checked
            response = client.post(SECOND_FACTOR_URL, {"code": "000000" if code_for(device) != "000000" else "111111"})
            assert response.status_code in {200, 302}, attempt
        assert response["Location"] == LOGIN_URL
        clock.shift(10)
        submit_password(client, "adm")
    admin_user.refresh_from_db()
    assert admin_user.is_locked
    assert [b["details"]["reason"] for b in records("auth.login")] == ["wrong second factor"] * 3 + ["locked"]
    assert len(records("account.locked")) == 1
    assert not is_signed_in(client)


def test_the_pending_sign_in_expires_after_five_minutes(client, admin_user):
    """A password entered and left is not a half-open door: after 5 minutes even the right code is refused."""
    device = enrolled_device(admin_user)
    with time_machine.travel(START, tick=False) as clock:
        submit_password(client, "adm")
        clock.shift(5 * 60 + 1)
        response = client.post(SECOND_FACTOR_URL, {"code": code_for(device)})
        assert response.status_code == 302
        assert response["Location"] == LOGIN_URL
        assert not is_signed_in(client)
        assert client.get(SECOND_FACTOR_URL)["Location"] == LOGIN_URL
    [body] = records("auth.login")
    assert (body["outcome"], body["details"]["reason"]) == ("denied", "second factor not presented in time")


def test_the_second_factor_page_needs_a_pending_sign_in(client, db):
    """Nobody reaches the code form without the right password first."""
    assert client.get(SECOND_FACTOR_URL)["Location"] == LOGIN_URL
    assert client.post(SECOND_FACTOR_URL, {"code": "123456"})["Location"] == LOGIN_URL
    assert client.get(ENROL_URL)["Location"] == LOGIN_URL


def test_a_malformed_code_is_400_and_counts_nothing(client, admin_user):
    """A code that is not 6 to 8 digits is a malformed request, not a wrong code."""
    enrolled_device(admin_user)
    submit_password(client, "adm")
    response = client.post(SECOND_FACTOR_URL, {"code": "<script>"})
    assert response.status_code == 400
    admin_user.refresh_from_db()
    assert admin_user.failed_logins == 0


def test_a_user_without_a_device_is_sent_to_enrol_it(client, admin_user):
    """V-222523: a privileged user without a TOTP device must enrol one before the sign-in can complete."""
    response = submit_password(client, "adm")
    assert response["Location"] == ENROL_URL
    assert client.get(SECOND_FACTOR_URL)["Location"] == ENROL_URL
    assert not is_signed_in(client)


def test_enrolment_shows_the_secret_and_an_inline_svg_qr_code(client, admin_user):
    """The QR code is SVG markup in the page (no inline style or script, no data: URL: the CSP forbids them),
    and the device is created unconfirmed with the policy's step and tolerance."""
    submit_password(client, "adm")
    response = client.get(ENROL_URL)
    assert response.status_code == 200
    html = response.content.decode()
    device = TOTPDevice.objects.get(user=admin_user)
    security = get_policy().security
    assert not device.confirmed
    assert (device.step, device.tolerance) == (security.totp_step_seconds, security.totp_tolerance_steps)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', html)
    assert secret is not None
    assert len(secret.group(1)) == 32  # 20 random bytes in base32
    assert "<svg" in html
    assert "data:" not in html
    assert not re.search(r"\sstyle\s*=", html)
    assert "<script" not in html
    assert "<style" not in html
    [started] = records("mfa.enrolment_started")
    assert started["actor"] == "adm"
    assert "key" not in started["details"]
    assert device.key not in html  # only the base32 form an authenticator app takes is shown
    assert client.get(ENROL_URL).status_code == 200
    assert TOTPDevice.objects.filter(user=admin_user).count() == 1  # reloading keeps the same secret


def test_a_right_first_code_confirms_the_device_and_signs_in(client, admin_user):
    """V-222523: enrolment ends with a verified code, which is also the sign-in's second factor; both audited."""
    with time_machine.travel(START, tick=False):
        submit_password(client, "adm")
        client.get(ENROL_URL)
        device = TOTPDevice.objects.get(user=admin_user)
        response = client.post(ENROL_URL, {"code": code_for(device)})
        assert response["Location"] == HOME_URL
        assert is_signed_in(client)
    device.refresh_from_db()
    assert device.confirmed
    [enrolled] = records("mfa.enrolled")
    assert (enrolled["actor"], enrolled["object"]["type"]) == ("adm", "totp_device")
    [login] = records("auth.login")
    assert login["details"]["method"] == "password+totp"


def test_a_wrong_first_code_does_not_confirm_and_counts_as_a_failure(client, admin_user):
    """V-222432: wrong codes during enrolment are failed sign-ins too; the device stays unconfirmed."""
    with time_machine.travel(START, tick=False):
        submit_password(client, "adm")
        client.get(ENROL_URL)
        device = TOTPDevice.objects.get(user=admin_user)
        wrong = "111111" if code_for(device) != "111111" else "222222"
        response = client.post(ENROL_URL, {"code": wrong})
    assert response.status_code == 200
    device.refresh_from_db()
    assert not device.confirmed
    admin_user.refresh_from_db()
    assert admin_user.failed_logins == 1
    assert not records("mfa.enrolled")


def test_a_confirmed_device_cannot_be_replaced_by_someone_who_knows_only_the_password(client, admin_user):
    """Enrolment is closed once a device is confirmed: the password alone must never add a second factor."""
    enrolled_device(admin_user)
    submit_password(client, "adm")
    assert client.get(ENROL_URL)["Location"] == SECOND_FACTOR_URL
    assert client.post(ENROL_URL, {"code": "123456"})["Location"] == SECOND_FACTOR_URL
    assert TOTPDevice.objects.filter(user=admin_user).count() == 1
