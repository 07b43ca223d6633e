"""Audit records of real HTTP requests carry the request's context (V-222473..V-222478).

Uses a URL map with only the API routes (`tests.auditlog.urls`), so these tests depend on the audited endpoint
alone, not on every page of the site.
"""

from __future__ import annotations

import pytest

from appliance.accounts.models import User
from appliance.auditlog.models import AuditRecord
from tests.auditlog.helpers import body_of
from tests.conftest import STRONG_PASSWORD, sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.auditlog.urls")]


@pytest.fixture
def roleless(db) -> User:
    """Signed in, but holding no role: every permission is refused at the role gate."""
    user = User(username="nobody", roles=[], clearance="SECRET", compartments=[])
    user.set_password(STRONG_PASSWORD)
    user.save()
    return user


def test_a_denied_api_request_is_recorded_with_its_full_context(client, roleless):
    """V-222473 what (access.denied), V-222474 when, V-222475 where (component, request id, path),
    V-222476 source (client IP, session), V-222477 outcome (denied), V-222478 who (actor and roles)."""
    sign_in(client, roleless)
    response = client.get("/api/me", REMOTE_ADDR="192.0.2.17", HTTP_X_REQUEST_ID="req-http-000001")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-http-000001"
    row = AuditRecord.objects.get(action="access.denied")
    body = body_of(row)
    assert body["outcome"] == "denied"
    assert body["actor"] == "nobody"
    assert body["roles"] == []
    assert body["session"] == "test-nobody"
    assert body["request_id"] == "req-http-000001"
    assert body["client_ip"] == "192.0.2.17"
    assert body["component"] == "api"
    assert body["time"].endswith("Z")
    assert body["object"] == {"type": "", "id": ""}
    assert body["label"] == ""
    assert body["details"] == {"permission": "account.self", "gate": "role", "path": "/api/me"}
    assert (row.actor, row.client_ip, row.request_id) == ("nobody", "192.0.2.17", "req-http-000001")


def test_an_allowed_api_request_writes_no_denial(client, analyst):
    """The control case: the same request by a user who holds the permission is answered and not refused."""
    sign_in(client, analyst)
    response = client.get("/api/me", REMOTE_ADDR="192.0.2.17")
    assert response.status_code == 200
    assert response.json()["username"] == "ana"
    assert not AuditRecord.objects.filter(action="access.denied").exists()


def test_a_forged_request_id_is_replaced(client, roleless):
    """Only a well-formed request id is trusted, so a client cannot inject text into the log (V-222475)."""
    sign_in(client, roleless)
    response = client.get("/api/me", HTTP_X_REQUEST_ID="bad id\nwith newline")
    body = body_of(AuditRecord.objects.get(action="access.denied"))
    assert body["request_id"] == response["X-Request-ID"]
    assert body["request_id"] != "bad id\nwith newline"
    assert len(body["request_id"]) == 32
