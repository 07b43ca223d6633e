"""Who reaches the auditor's workspace: the allowed / denied / hidden trio for every page and API endpoint.

Auditors get the page; administrators (who must never read the log they could be tempted to cover up) and
analysts get the same 404 a missing page gives, and each refusal is an audit record; anonymous callers are sent
to sign in (pages) or answered 401 (API). STIG: V-222500 (no unauthorized read of audit information), V-222503
(audit tools protected from unauthorized access), V-222425 (approved authorizations enforced).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from tests.conftest import sign_in

# (method, url name, args, permission it needs, JSON body for API POSTs)
PAGES = [
    ("get", "auditlog:search", (), "audit.read"),
    ("get", "auditlog:detail", (0,), "audit.read"),
    ("get", "auditlog:verify", (), "audit.verify"),
    ("get", "auditlog:export", (), "audit.export"),
    ("post", "auditlog:export", (), "audit.export"),
]
APIS = [
    ("get", "auditlog-api:records", (), "audit.read"),
    ("get", "auditlog-api:record", (0,), "audit.read"),
    ("post", "auditlog-api:verify-step", (), "audit.verify"),
    ("post", "auditlog-api:export", (), "audit.export"),
]


def _ids(cases: list[tuple]) -> list[str]:
    return [f"{case[0].upper()} {case[1]}" for case in cases]


@pytest.fixture
def first_record(db) -> AuditRecord:
    """Record 0 exists, so the detail endpoints have something to show (or to hide)."""
    return record(action="test.event", object_type="thing", object_id="1")


def _call(client: Client, method: str, name: str, args: tuple, *, api: bool):
    url = reverse(name, args=args)
    if method == "get":
        return client.get(url)
    if api:
        return client.post(url, json.dumps({"from": 0}), content_type="application/json")
    return client.post(url)


@pytest.mark.parametrize(("method", "name", "args", "permission"), PAGES + APIS, ids=_ids(PAGES + APIS))
def test_it_serves_the_auditor(client, auditor, first_record, method, name, args, permission):
    sign_in(client, auditor)
    response = _call(client, method, name, args, api=(method, name, args, permission) in APIS)
    assert response.status_code == 200


@pytest.mark.parametrize("persona", ["admin_user", "analyst"])
@pytest.mark.parametrize(("method", "name", "args", "permission"), PAGES + APIS, ids=_ids(PAGES + APIS))
def test_it_hides_itself_from_everyone_else_and_audits_the_refusal(
    client, request, first_record, persona, method, name, args, permission
):
    user = request.getfixturevalue(persona)
    sign_in(client, user)
    before = AuditRecord.objects.count()
    response = _call(client, method, name, args, api=(method, name, args, permission) in APIS)
    assert response.status_code == 404
    rows = list(AuditRecord.objects.filter(seq__gte=before).order_by("seq"))
    assert [row.action for row in rows] == ["access.denied"]
    body = json.loads(rows[0].canonical)
    assert body["actor"] == user.username
    assert body["outcome"] == "denied"
    assert body["details"]["permission"] == permission
    assert body["details"]["gate"] == "role"
    assert not AuditRecord.objects.filter(action__in=["audit.search", "audit.view", "audit.verify", "audit.export"])


@pytest.mark.parametrize(("method", "name", "args", "permission"), PAGES, ids=_ids(PAGES))
def test_pages_send_anonymous_visitors_to_sign_in(client, first_record, method, name, args, permission):
    response = _call(client, method, name, args, api=False)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:consent"))
    assert not AuditRecord.objects.filter(action__startswith="audit.")


@pytest.mark.parametrize(("method", "name", "args", "permission"), APIS, ids=_ids(APIS))
def test_the_api_answers_anonymous_callers_401(client, first_record, method, name, args, permission):
    response = _call(client, method, name, args, api=True)
    assert response.status_code == 401
    assert not AuditRecord.objects.filter(action__startswith="audit.")


def test_the_home_page_links_the_audit_card_to_the_workspace(client, auditor):
    sign_in(client, auditor)
    html = client.get(reverse("web:home")).content.decode()
    assert f'<a href="{reverse("auditlog:search")}">Audit log</a>' in html
