"""Personal API tokens: stored only as a digest, expiring, revocable, their secret shown once, and every use
(and every refused use) in the audit log."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from appliance.access.denial import AccessDenied
from appliance.access.policy import get_policy
from appliance.accounts.actions import AccountError, create_api_token, revoke_api_token
from appliance.accounts.models import ApiToken, User
from appliance.auditlog.models import AuditRecord
from tests.conftest import sign_in

ME = "/api/me"


def body(record: AuditRecord) -> dict:
    return json.loads(record.canonical)


def records_of(action: str) -> list[dict]:
    return [body(r) for r in AuditRecord.objects.filter(action=action)]


def every_stored_value() -> str:
    """Every cell of every table, as text: what an attacker with a copy of the database would have."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608  (our own table names)
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


# --- the actions ---------------------------------------------------------------------------------------------------


def test_a_token_is_stored_only_as_its_digest(analyst):
    """The secret appears nowhere in the database: not in the token row, not in the audit record."""
    token, secret = create_api_token(analyst, name="nightly export", lifetime_days=7)
    token.refresh_from_db()
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix)
    assert secret not in every_stored_value()
    assert secret[len(token.prefix) :] not in every_stored_value()


def test_creating_a_token_is_audited_with_its_parameters(analyst):
    token, _ = create_api_token(analyst, name="nightly export", lifetime_days=7)
    [entry] = records_of("token.create")
    assert entry["actor"] == "ana"
    assert entry["object"] == {"type": "api_token", "id": str(token.pk)}
    assert entry["details"]["owner"] == "ana"
    assert entry["details"]["name"] == "nightly export"
    assert entry["details"]["lifetime_days"] == 7
    assert entry["details"]["prefix"] == token.prefix
    assert abs(token.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


def test_the_default_lifetime_comes_from_the_policy(analyst):
    token, _ = create_api_token(analyst, name="default")
    expected = timezone.now() + timedelta(days=get_policy().security.token_default_lifetime_days)
    assert abs(token.expires_at - expected) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("name", "days", "problem"),
    [
        ("too long", "MAX+1", "token lifetime must be from 1 to"),
        ("zero", 0, "token lifetime must be from 1 to"),
        ("   ", 7, "a token needs a name"),
        ("x" * 101, 7, "at most 100 printable characters"),
    ],
    ids=["over-policy-max", "zero-days", "blank-name", "long-name"],
)
def test_bad_token_requests_write_nothing(analyst, name, days, problem):
    days = get_policy().security.token_max_lifetime_days + 1 if days == "MAX+1" else days
    before = (ApiToken.objects.count(), AuditRecord.objects.count())
    with pytest.raises(AccountError, match=re.escape(problem)):
        create_api_token(analyst, name=name, lifetime_days=days)
    assert (ApiToken.objects.count(), AuditRecord.objects.count()) == before


def test_revoking_ones_own_token_is_audited(analyst):
    token, _ = create_api_token(analyst, name="t", lifetime_days=7)
    revoke_api_token(analyst, token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is not None
    [entry] = records_of("token.revoke")
    assert (entry["actor"], entry["details"]["was_revoked"]) == ("ana", False)


def test_nobody_revokes_someone_elses_token(analyst, reviewer):
    token, _ = create_api_token(analyst, name="t", lifetime_days=7)
    with pytest.raises(AccessDenied):
        revoke_api_token(reviewer, token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is None
    [entry] = records_of("access.denied")
    assert entry["actor"] == "rev"
    assert entry["details"] == {"permission": "account.self", "gate": "ownership"}


# --- bearer authentication -------------------------------------------------------------------------------------------


def test_a_bearer_token_authenticates_the_api_and_each_use_is_audited(client, analyst):
    token, secret = create_api_token(analyst, name="script", lifetime_days=7)
    for _ in range(2):
        response = client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert response.status_code == 200
        assert response.json()["username"] == "ana"
    uses = records_of("token.use")
    assert len(uses) == 2
    for entry in uses:
        assert (entry["actor"], entry["outcome"], entry["token"]) == ("ana", "ok", str(token.pk))
        assert entry["object"] == {"type": "api_token", "id": str(token.pk)}
    token.refresh_from_db()
    assert token.last_used_at is not None


def _expire(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def _revoke(token: ApiToken) -> None:
    revoke_api_token(token.user, token_id=token.pk)


def _disable(token: ApiToken) -> None:
    User.objects.filter(pk=token.user_id).update(is_active=False)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [(_expire, "expired"), (_revoke, "revoked"), (_disable, "account disabled or locked")],
    ids=["expired", "revoked", "owner-disabled"],
)
def test_a_spoilt_token_is_refused_with_401_and_the_refusal_is_audited(client, analyst, spoil, reason):
    token, secret = create_api_token(analyst, name="script", lifetime_days=7)
    spoil(token)
    response = client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    [entry] = records_of("token.use")
    assert (entry["outcome"], entry["actor"], entry["details"]) == ("denied", "ana", {"reason": reason})
    assert entry["object"] == {"type": "api_token", "id": str(token.pk)}


def test_an_unknown_token_is_refused_with_401_and_audited(client, db):
    response = client.get(ME, HTTP_AUTHORIZATION="Bearer apl_" + "x" * 43)
    assert response.status_code == 401
    [entry] = records_of("token.use")
    assert (entry["outcome"], entry["details"]) == ("denied", {"reason": "unknown"})


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer " + "x" * 201, "Bearer caf\u00e9"])
def test_a_malformed_bearer_header_is_refused_with_401_and_audited(client, db, header):
    response = client.get(ME, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    [entry] = records_of("token.use")
    assert (entry["outcome"], entry["details"]) == ("denied", {"reason": "malformed"})


def test_a_refused_token_use_is_audited_in_a_committed_transaction(client, committed_db):
    """Nothing wraps this test: the refusal's record really commits in a transaction of its own."""
    response = client.get(ME, HTTP_AUTHORIZATION="Bearer apl_nope")
    assert response.status_code == 401
    assert [e["outcome"] for e in records_of("token.use")] == ["denied"]


# --- the page --------------------------------------------------------------------------------------------------------


def test_the_page_shows_a_new_secret_exactly_once(client, analyst):
    sign_in(client, analyst)
    response = client.post(reverse("accounts:tokens"), {"name": "nightly", "lifetime_days": 5})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = re.search(r'data-testid="token-secret">([^<]+)<', response.content.decode())
    assert match
    secret = match.group(1)
    token = ApiToken.objects.get(user=analyst)
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert token.name == "nightly"
    again = client.get(reverse("accounts:tokens")).content.decode()
    assert secret not in again
    assert token.prefix in again
    assert "nightly" in again


def test_the_page_lists_only_ones_own_tokens_with_their_state(client, analyst, reviewer):
    create_api_token(analyst, name="mine-active", lifetime_days=5)
    old, _ = create_api_token(analyst, name="mine-revoked", lifetime_days=5)
    revoke_api_token(analyst, token_id=old.pk)
    create_api_token(reviewer, name="someone-elses", lifetime_days=5)
    sign_in(client, analyst)
    html = client.get(reverse("accounts:tokens")).content.decode()
    assert "mine-active" in html
    assert "mine-revoked" in html
    assert "revoked" in html
    assert "someone-elses" not in html


def test_the_page_refuses_a_lifetime_above_the_policy_maximum(client, analyst):
    sign_in(client, analyst)
    too_long = get_policy().security.token_max_lifetime_days + 1
    response = client.post(reverse("accounts:tokens"), {"name": "x", "lifetime_days": too_long})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_through_the_page(client, analyst):
    token, secret = create_api_token(analyst, name="t", lifetime_days=5)
    sign_in(client, analyst)
    response = client.post(reverse("accounts:token-revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    assert client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_revoking_someone_elses_token_through_the_page_is_a_404_and_audited(client, analyst, reviewer):
    theirs, _ = create_api_token(reviewer, name="theirs", lifetime_days=5)
    sign_in(client, analyst)
    response = client.post(reverse("accounts:token-revoke", args=[theirs.pk]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    [entry] = records_of("access.denied")
    assert entry["actor"] == "ana"
    assert entry["object"] == {"type": "api_token", "id": str(theirs.pk)}


def test_a_missing_token_id_answers_exactly_like_someone_elses(client, analyst):
    sign_in(client, analyst)
    response = client.post(reverse("accounts:token-revoke", args=[999_999]))
    assert response.status_code == 404


def test_the_page_needs_sign_in(client, db):
    response = client.get(reverse("accounts:tokens"))
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
