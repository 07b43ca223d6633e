"""GET /api/datasets/<id>: the dataset for a cleared member, an audited 404 for everyone else, 401 for anonymous.

STIG: V-222425 (enforce approved authorizations), V-222426 (DAC: membership), V-222427 (MAC: label).
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import sign_in
from tests.datasets.conftest import HIDDEN_FROM, Cast, assert_one_denial, denials


def _url(cast: Cast) -> str:
    return f"/api/datasets/{cast.dataset.pk}"


def test_it_returns_the_dataset_to_a_cleared_member(client: Client, cast: Cast) -> None:
    sign_in(client, cast.member)
    response = client.get(_url(cast))
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "harbour survey"
    assert body["classification"] == "SECRET"
    assert body["compartments"] == ["ALPHA"]
    assert body["banner"] == "SECRET//ALPHA"
    assert denials() == []


@pytest.mark.parametrize(("who", "gate"), HIDDEN_FROM)
def test_it_hides_the_dataset_behind_an_audited_404(client: Client, cast: Cast, who: str, gate: str) -> None:
    user = getattr(cast, who)
    sign_in(client, user)
    response = client.get(_url(cast))
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert_one_denial(actor=user.username, gate=gate, permission="dataset.view", object_id=str(cast.dataset.pk))


def test_a_missing_dataset_answers_like_a_hidden_one(client: Client, cast: Cast) -> None:
    sign_in(client, cast.not_member)
    hidden = client.get(_url(cast))
    missing = client.get(f"/api/datasets/{cast.dataset.pk + 1000}")
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())


def test_it_refuses_a_role_without_dataset_view_with_an_audited_404(client: Client, cast: Cast) -> None:
    sign_in(client, cast.wrong_role)
    response = client.get(_url(cast))
    assert response.status_code == 404
    assert_one_denial(actor=cast.wrong_role.username, gate="role", permission="dataset.view")


def test_it_answers_anonymous_callers_401(client: Client, cast: Cast) -> None:
    response = client.get(_url(cast))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
