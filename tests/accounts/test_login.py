"""Username and password sign-in: the success path, refusals that never say what was wrong, malformed bodies."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile

from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog.models import AuditRecord
from tests.accounts import HOME_URL, LOGIN_URL, acknowledge, is_signed_in, records, submit_password
from tests.conftest import STRONG_PASSWORD

GENERIC_FAILURE = "Sign-in failed. Check your username and password and try again."


def test_the_right_password_signs_in_and_is_recorded(client, analyst):
    """V-222473, V-222477, V-222478: the sign-in is audited with who, the outcome and the method; the session
    gets the clocks the timeouts read and an opaque audit reference instead of its key (V-222577)."""
    response = submit_password(client, "ana")
    assert response.status_code == 302
    assert response["Location"] == HOME_URL
    assert is_signed_in(client)
    session = client.session
    assert abs(session["auth_time"] - time.time()) < 60
    assert session["last_seen"] >= session["auth_time"]
    assert len(session["audit_session"]) == 16
    [body] = records("auth.login")
    assert body["outcome"] == "ok"
    assert body["actor"] == "ana"
    assert body["roles"] == ["analyst"]
    assert body["session"] == session["audit_session"]
    assert body["details"]["method"] == "password"
    assert session.session_key not in AuditRecord.objects.get(action="auth.login").canonical


def test_signing_in_gives_the_session_a_new_key(client, analyst):
    """V-222579: a session key known before sign-in (fixation) is worthless after it."""
    acknowledge(client)
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.post(LOGIN_URL, {"username": "ana", "password": STRONG_PASSWORD})
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert Session.objects.filter(session_key=after).exists()


def test_a_wrong_password_is_refused_counted_and_recorded(client, analyst):
    """V-222432 counts it toward the lockout; V-222477 records the failure under the account it was tried on."""
    response = submit_password(client, "ana", "Wrong-Horse-Battery-9")
    assert response.status_code == 200
    assert GENERIC_FAILURE in response.content.decode()
    assert not is_signed_in(client)
    analyst.refresh_from_db()
    assert analyst.failed_logins == 1
    [body] = records("auth.login")
    assert (body["outcome"], body["actor"], body["details"]["reason"]) == ("denied", "ana", "wrong password")


def test_an_unknown_user_gets_the_same_answer_and_is_recorded_without_an_actor(client, db):
    """V-222477: the failure is audited with the attempted name (truncated), never attributed to anyone."""
    attempted = "nobody-" + "x" * 57  # exactly the 64 characters a username may have
    response = submit_password(client, attempted, STRONG_PASSWORD)
    assert response.status_code == 200
    assert GENERIC_FAILURE in response.content.decode()
    [body] = records("auth.login")
    assert body["outcome"] == "denied"
    assert body["actor"] == ""
    assert body["details"] == {"reason": "unknown user", "attempted_username": attempted}


def test_an_unknown_user_costs_the_same_hashing_work_as_a_wrong_password(client, analyst):
    """Timing does not tell whether an account exists: the hasher runs for unknown names too."""
    acknowledge(client)
    started = time.perf_counter()
    client.post(LOGIN_URL, {"username": "ana", "password": "Wrong-Horse-Battery-9"})
    known = time.perf_counter() - started
    acknowledge(client)
    started = time.perf_counter()
    client.post(LOGIN_URL, {"username": "nobody", "password": "Wrong-Horse-Battery-9"})
    unknown = time.perf_counter() - started
    assert unknown > known * 0.5


def test_a_disabled_account_is_refused_even_with_the_right_password(client, analyst):
    """A disabled account cannot sign in; the answer is the same as for a wrong password."""
    User.objects.filter(pk=analyst.pk).update(is_active=False)
    response = submit_password(client, "ana")
    assert response.status_code == 200
    assert GENERIC_FAILURE in response.content.decode()
    assert not is_signed_in(client)
    [body] = records("auth.login")
    assert (body["outcome"], body["details"]["reason"]) == ("denied", "disabled")


def test_an_analyst_needs_no_second_factor(client, analyst):
    """The policy asks for a second factor only from the roles it names; analysts sign in with the password."""
    assert not get_policy().security.mfa_required_for_roles.intersection(analyst.roles)
    response = submit_password(client, "ana")
    assert response["Location"] == HOME_URL


def test_a_local_next_page_is_reached_after_sign_in(client, analyst):
    """The page asked for before the sign-in is where the user lands after it."""
    client.post("/accounts/notice", {"next": "/accounts/tokens"})
    response = client.post(LOGIN_URL, {"username": "ana", "password": STRONG_PASSWORD, "next": "/accounts/tokens"})
    assert response["Location"] == "/accounts/tokens"


MAX_PASSWORD = 128  # policies/security.toml password.max_length, checked below


@pytest.mark.parametrize(
    ("body", "audited"),
    [
        pytest.param({"password": STRONG_PASSWORD}, False, id="missing-username"),
        pytest.param({"username": "ana"}, True, id="missing-password"),
        pytest.param({"username": "", "password": STRONG_PASSWORD}, False, id="empty-username"),
        pytest.param({"username": "a" * 65, "password": STRONG_PASSWORD}, True, id="username-too-long"),
        pytest.param({"username": "ana", "password": "A-1" + "a" * MAX_PASSWORD}, True, id="password-too-long"),
        pytest.param({"username": ["ana", "rev"], "password": STRONG_PASSWORD}, True, id="repeated-username"),
        pytest.param({"username": "ana\x00", "password": STRONG_PASSWORD}, True, id="control-character"),
    ],
)
def test_a_malformed_body_is_400_and_writes_only_its_audit_record(client, analyst, body, audited):
    """A malformed request never reaches the hasher or the lockout counter; where it names a user, it is audited
    (V-222477) with the attempted name truncated to 64 characters."""
    assert get_policy().security.password.max_length == MAX_PASSWORD
    acknowledge(client)
    sessions_before = list(Session.objects.values_list("session_key", "session_data"))
    audit_before = AuditRecord.objects.count()
    response = client.post(LOGIN_URL, body)
    assert response.status_code == 400
    assert "The sign-in request was malformed" in response.content.decode()
    assert list(Session.objects.values_list("session_key", "session_data")) == sessions_before
    analyst.refresh_from_db()
    assert (analyst.failed_logins, analyst.last_login) == (0, None)
    new = records("auth.login")
    assert AuditRecord.objects.count() == audit_before + (1 if audited else 0)
    if audited:
        [body_of_record] = new
        assert body_of_record["outcome"] == "denied"
        assert body_of_record["actor"] == ""
        assert body_of_record["details"]["reason"] == "malformed request"
        assert len(body_of_record["details"]["attempted_username"]) <= 64
        assert body_of_record["details"]["problem"]


def test_a_file_in_place_of_the_password_is_400(client, analyst):
    """Non-text fields are malformed, not a wrong password: no failure is counted."""
    acknowledge(client)
    upload = SimpleUploadedFile("password.txt", STRONG_PASSWORD.encode())
    response = client.post(LOGIN_URL, {"username": "ana", "password": upload})
    assert response.status_code == 400
    analyst.refresh_from_db()
    assert analyst.failed_logins == 0
    [body] = records("auth.login")
    assert body["details"]["reason"] == "malformed request"


def test_a_json_body_is_400(client, analyst):
    """The login endpoint takes a form, nothing else; a JSON body is refused outright."""
    acknowledge(client)
    response = client.post(LOGIN_URL, {"username": "ana", "password": STRONG_PASSWORD}, content_type="application/json")
    assert response.status_code == 400
    assert "must be a form" in response.content.decode()
    assert not is_signed_in(client)
