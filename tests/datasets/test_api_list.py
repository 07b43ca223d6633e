"""GET /api/datasets/: the datasets the caller may see, filtered in SQL, in keyset pages.

STIG: V-222425 (enforce approved authorizations), V-222426 (DAC: membership), V-222427 (MAC: label).
"""

from __future__ import annotations

import pytest
from django.test import Client

from appliance.datasets.actions import create_dataset
from tests.conftest import sign_in
from tests.datasets.conftest import HIDDEN_FROM, Cast, assert_one_denial, denials


def test_it_lists_the_dataset_for_a_cleared_member(client: Client, cast: Cast) -> None:
    sign_in(client, cast.member)
    response = client.get("/api/datasets/")
    assert response.status_code == 200
    assert [d["name"] for d in response.json()["results"]] == ["harbour survey"]
    assert response.json()["next_after"] is None


@pytest.mark.parametrize(("who", "gate"), HIDDEN_FROM)
def test_it_leaves_out_what_the_caller_may_not_see(client: Client, cast: Cast, who: str, gate: str) -> None:
    sign_in(client, getattr(cast, who))
    response = client.get("/api/datasets/")
    assert response.status_code == 200
    assert response.json() == {"results": [], "next_after": None}
    assert denials() == []


def test_it_refuses_a_role_without_dataset_view_with_an_audited_404(client: Client, cast: Cast) -> None:
    sign_in(client, cast.wrong_role)
    response = client.get("/api/datasets/")
    assert response.status_code == 404
    assert_one_denial(actor=cast.wrong_role.username, gate="role", permission="dataset.view")


def test_it_answers_anonymous_callers_401(client: Client, cast: Cast) -> None:
    assert client.get("/api/datasets/").status_code == 401


def test_it_pages_by_keyset(client: Client, cast: Cast) -> None:
    for index in range(4):
        create_dataset(cast.owner, name=f"batch {index}", classification="UNCLASSIFIED")
    sign_in(client, cast.owner)
    first = client.get("/api/datasets/?limit=3").json()
    second = client.get(f"/api/datasets/?limit=3&after={first['next_after']}").json()
    names = [d["name"] for d in first["results"] + second["results"]]
    assert names == ["harbour survey", "batch 0", "batch 1", "batch 2", "batch 3"]
    assert second["next_after"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "after=-1", "after=x"])
def test_a_bad_cursor_is_a_400(client: Client, cast: Cast, query: str) -> None:
    sign_in(client, cast.member)
    assert client.get(f"/api/datasets/?{query}").status_code == 400
