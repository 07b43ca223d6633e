"""The manager's pages: create a dataset (no write up), and add or remove members (need-to-know), each through
the real actions and recorded (V-222425, V-222426, V-222427)."""

from __future__ import annotations

from django.test import Client

from appliance.auditlog.models import AuditRecord
from appliance.datasets.models import Dataset
from tests.conftest import sign_in
from tests.datasets.conftest import Cast, denials


def test_a_manager_creates_a_dataset_and_becomes_its_member(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    assert b"New dataset" in client.get("/datasets/").content
    response = client.post(
        "/datasets/new", {"name": "coastline", "classification": "SECRET", "compartments": ["BRAVO"]}
    )
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="coastline")
    assert dataset.access_label().banner() == "SECRET//BRAVO"
    assert list(dataset.members.values_list("username", flat=True)) == ["owner"]
    assert dataset.data_key is not None


def test_a_label_above_ones_own_clearance_is_refused_and_recorded(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)  # TOP SECRET with ALPHA and BRAVO: CHARLIE is not theirs, if the policy has it
    response = client.post("/datasets/new", {"name": "", "classification": "NOPE"})
    assert response.status_code == 400
    assert not Dataset.objects.filter(name="").exists()


def test_analysts_cannot_reach_the_create_page(client: Client, cast: Cast) -> None:
    sign_in(client, cast.member)
    assert client.get("/datasets/new").status_code == 404
    assert b"New dataset" not in client.get("/datasets/").content
    assert [d["details"]["gate"] for d in denials()] == ["role"]


def test_members_are_added_and_removed_by_the_manager(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    url = f"/datasets/{cast.dataset.pk}/members"
    assert client.get(url).status_code == 200
    assert client.post(url, {"username": "stranger", "op": "add"}).status_code == 302
    assert cast.dataset.members.filter(username="stranger").exists()
    assert client.post(url, {"username": "stranger", "op": "remove"}).status_code == 302
    assert not cast.dataset.members.filter(username="stranger").exists()
    unknown = client.post(url, {"username": "nobody", "op": "add"})
    assert unknown.status_code == 400
    assert b"nobody" in unknown.content
    actions = list(AuditRecord.objects.filter(action__startswith="dataset.member").values_list("action", flat=True))
    assert actions[-2:] == ["dataset.member.add", "dataset.member.remove"]


def test_members_page_is_hidden_from_those_who_may_not_manage(client: Client, cast: Cast) -> None:
    sign_in(client, cast.member)
    assert client.get(f"/datasets/{cast.dataset.pk}/members").status_code == 404
