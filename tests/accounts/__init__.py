"""Tests of the sign-in flow, and the few steps they share: each goes through the real pages and forms.

Passwords are hashed with the policy's full PBKDF2 work, so every sign-in attempt here costs about a second:
the tests make only the attempts the behaviour under test needs.
"""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from appliance.access.policy import get_policy
from appliance.auditlog.models import AuditRecord
from tests.conftest import STRONG_PASSWORD

CONSENT_URL = reverse("accounts:consent")
LOGIN_URL = reverse("accounts:login")
SECOND_FACTOR_URL = reverse("accounts:second-factor")
ENROL_URL = reverse("accounts:enrol-second-factor")
LOGOUT_URL = reverse("accounts:logout")
SIGNED_OUT_URL = reverse("accounts:signed-out")
HOME_URL = reverse("web:home")


def acknowledge(client: Client) -> None:
    """Acknowledge the consent notice, as a person does before every sign-in."""
    response = client.post(CONSENT_URL)
    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL


def submit_password(client: Client, username: str, password: str = STRONG_PASSWORD) -> Any:
    """Acknowledge the notice, then post the login form."""
    acknowledge(client)
    return client.post(LOGIN_URL, {"username": username, "password": password})


def code_for(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    """The code the user's authenticator app shows now (computed from the device key, as the app does)."""
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset_steps)
    return str(code).zfill(device.digits)


def enrolled_device(user: Any) -> TOTPDevice:
    """A confirmed TOTP device for `user` with the policy's step and tolerance (as enrolment leaves it)."""
    security = get_policy().security
    return TOTPDevice.objects.create(
        user=user,
        name="authenticator",
        confirmed=True,
        step=security.totp_step_seconds,
        tolerance=security.totp_tolerance_steps,
    )


def sign_in_through_forms(client: Client, user: Any) -> None:
    """The whole real sign-in: notice, password and, where the policy asks for it, the TOTP code."""
    response = submit_password(client, user.username)
    if response.status_code == 302 and response["Location"] == SECOND_FACTOR_URL:
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        response = client.post(SECOND_FACTOR_URL, {"code": code_for(device)})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == HOME_URL


def records(action: str) -> list[dict[str, Any]]:
    """The audit records of `action`, oldest first, as their canonical bodies."""
    return [json.loads(row.canonical) for row in AuditRecord.objects.filter(action=action).order_by("seq")]


def is_signed_in(client: Client) -> bool:
    """Whether the client's session is signed in: the home page answers instead of sending it to sign in."""
    return client.get(HOME_URL).status_code == 200
