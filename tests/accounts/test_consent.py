"""The Standard Mandatory DoD Notice and Consent Banner comes before every sign-in (V-222434, V-222435)."""

from __future__ import annotations

import time_machine
from django.contrib.sessions.models import Session

from appliance.auditlog.models import AuditRecord
from tests.accounts import (
    CONSENT_URL,
    LOGIN_URL,
    LOGOUT_URL,
    acknowledge,
    is_signed_in,
    records,
    sign_in_through_forms,
)
from tests.conftest import STRONG_PASSWORD

NOTICE_SENTENCES = (
    "You are accessing a U.S. Government (USG) Information System (IS) that is provided for USG-authorized use only.",
    "By using this IS (which includes any device attached to this IS), you consent to the following conditions:",
    "-The USG routinely intercepts and monitors communications on this IS for purposes including, but not limited "
    "to, penetration testing, COMSEC monitoring, network operations and defense, personnel misconduct (PM), law "
    "enforcement (LE), and counterintelligence (CI) investigations.",
    "-At any time, the USG may inspect and seize data stored on this IS.",
    "-Communications using, or data stored on, this IS are not private, are subject to routine monitoring, "
    "interception, and search, and may be disclosed or used for any USG-authorized purpose.",
    "-This IS includes security measures (e.g., authentication and access controls) to protect USG "
    "interests--not for your personal benefit or privacy.",
    "-Notwithstanding the above, using this IS does not constitute consent to PM, LE or CI investigative searching "
    "or monitoring of the content of privileged communications, or work product, related to personal "
    "representation or services by attorneys, psychotherapists, or clergy, and their assistants. Such "
    "communications and work product are private and confidential. See User Agreement for details.",
)


def test_the_notice_shows_the_full_standard_text_and_an_acknowledge_button(client, db):
    """V-222434: the full standard notice is displayed before sign-in, with a way to acknowledge it."""
    response = client.get(CONSENT_URL)
    assert response.status_code == 200
    html = response.content.decode()
    for sentence in NOTICE_SENTENCES:
        assert sentence in html
    assert 'method="post"' in html
    assert "I acknowledge" in html
    assert "csrfmiddlewaretoken" in html


def test_the_login_form_is_not_shown_before_the_notice_is_acknowledged(client, db):
    """V-222435: the login page sends a visitor who has not acknowledged the notice to it first."""
    response = client.get(LOGIN_URL)
    assert response.status_code == 302
    assert response["Location"] == CONSENT_URL


def test_acknowledging_is_recorded_and_opens_the_login_form(client, db):
    """V-222435: the acknowledgement is kept (session) and audited (consent.acknowledged), then the form shows."""
    acknowledge(client)
    assert [body["outcome"] for body in records("consent.acknowledged")] == ["ok"]
    response = client.get(LOGIN_URL)
    assert response.status_code == 200
    assert 'name="username"' in response.content.decode()
    assert 'name="password"' in response.content.decode()


def test_credentials_posted_without_acknowledgement_are_refused_and_nothing_happens(client, analyst):
    """V-222435: a script that skips the notice gets no sign-in, no failure count and no other effect."""
    response = client.post(LOGIN_URL, {"username": "ana", "password": STRONG_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == CONSENT_URL
    assert not is_signed_in(client)
    assert not AuditRecord.objects.exists()
    assert not Session.objects.exists()
    analyst.refresh_from_db()
    assert (analyst.failed_logins, analyst.last_login) == (0, None)


def test_an_old_acknowledgement_sends_the_visitor_back_to_the_notice(client, analyst):
    """V-222435: a login page left open must show the notice again before anyone signs in on it."""
    with time_machine.travel("2026-03-02 08:00:00Z", tick=False) as clock:
        acknowledge(client)
        clock.shift(11 * 60)
        response = client.post(LOGIN_URL, {"username": "ana", "password": STRONG_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == CONSENT_URL
    assert not records("auth.login")


def test_every_sign_in_needs_its_own_acknowledgement(client, analyst):
    """V-222434: after signing out, the notice must be acknowledged again before the next sign-in."""
    sign_in_through_forms(client, analyst)
    client.post(LOGOUT_URL)
    response = client.get(LOGIN_URL)
    assert response.status_code == 302
    assert response["Location"] == CONSENT_URL


def test_the_notice_keeps_a_local_next_page_and_drops_a_foreign_one(client, db):
    """The page asked for before sign-in survives the notice; another site's address does not (no open redirect)."""
    response = client.post(CONSENT_URL, {"next": "/datasets/7"})
    assert response["Location"] == f"{LOGIN_URL}?next=%2Fdatasets%2F7"
    response = client.post(CONSENT_URL, {"next": "https://attacker.example/"})
    assert response["Location"] == LOGIN_URL
