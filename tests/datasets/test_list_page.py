"""GET /datasets/: lists exactly the datasets the user may see (filtered in SQL), under the highest banner.

STIG: V-222425 (enforce approved authorizations), V-222426 (DAC: membership), V-222427 (MAC: label).
"""

from __future__ import annotations

import pytest
from django.test import Client

from appliance.datasets.actions import create_dataset
from tests.conftest import sign_in
from tests.datasets.conftest import HIDDEN_FROM, Cast, assert_one_denial, denials


def test_it_lists_the_dataset_for_a_cleared_member_and_raises_the_banner(client: Client, cast: Cast) -> None:
    sign_in(client, cast.member)
    response = client.get("/datasets/")
    assert response.status_code == 200
    assert b"harbour survey" in response.content
    assert b'data-testid="banner-top">SECRET//ALPHA<' in response.content


def test_the_banner_is_the_least_upper_bound_of_the_rows(client: Client, cast: Cast) -> None:
    create_dataset(cast.owner, name="bravo notes", classification="CONFIDENTIAL", compartments=["BRAVO"])
    sign_in(client, cast.owner)
    response = client.get("/datasets/")
    assert b'data-testid="banner-top">SECRET//ALPHA/BRAVO<' in response.content


def test_an_empty_list_carries_the_page_level_banner(client: Client, cast: Cast) -> None:
    sign_in(client, cast.not_member)
    response = client.get("/datasets/")
    assert b'data-testid="banner-top">UNCLASSIFIED<' in response.content


@pytest.mark.parametrize(("who", "gate"), HIDDEN_FROM)
def test_it_leaves_out_what_the_user_may_not_see(client: Client, cast: Cast, who: str, gate: str) -> None:
    sign_in(client, getattr(cast, who))
    response = client.get("/datasets/")
    assert response.status_code == 200
    assert b"harbour survey" not in response.content
    assert denials() == []  # a narrower list is not a refusal


def test_it_refuses_a_role_without_dataset_view_with_an_audited_404(client: Client, cast: Cast) -> None:
    sign_in(client, cast.wrong_role)
    response = client.get("/datasets/")
    assert response.status_code == 404
    assert_one_denial(actor=cast.wrong_role.username, gate="role", permission="dataset.view")


def test_it_sends_anonymous_visitors_to_sign_in(client: Client, cast: Cast) -> None:
    response = client.get("/datasets/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/notice?next=")


def test_it_pages_by_keyset(client: Client, cast: Cast) -> None:
    for index in range(55):
        create_dataset(cast.owner, name=f"batch {index:02d}", classification="UNCLASSIFIED")
    sign_in(client, cast.owner)
    first = client.get("/datasets/")
    assert first.content.count(b"<tr>") == 1 + 50
    assert first.context["next_after"] is not None
    second = client.get(f"/datasets/?after={first.context['next_after']}")
    assert second.content.count(b"<tr>") == 1 + 6
    assert second.context["next_after"] is None
