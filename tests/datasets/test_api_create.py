"""POST /api/datasets/: a manager creates a dataset at or below their own label; bad input is a 400 naming the
field and writes nothing; other roles get the audited 404; anonymous callers 401.

STIG: V-222425 (enforce approved authorizations), V-222427 (MAC: no write up).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from appliance.auditlog.models import AuditRecord
from appliance.datasets.models import Dataset
from tests.conftest import sign_in
from tests.datasets.conftest import Cast, assert_one_denial, person

GOOD = {"name": "new survey", "description": "coast", "classification": "SECRET", "compartments": ["BRAVO"]}


def _post(client: Client, body: dict[str, Any]) -> Any:
    return client.post("/api/datasets/", data=json.dumps(body), content_type="application/json")


def test_a_manager_creates_a_dataset_and_becomes_its_member(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    response = _post(client, GOOD)
    assert response.status_code == 201
    assert response.json()["banner"] == "SECRET//BRAVO"
    dataset = Dataset.objects.get(name="new survey")
    assert dataset.compartments == "/BRAVO/"
    assert list(dataset.members.all()) == [cast.owner]
    audit = AuditRecord.objects.get(action="dataset.create", object_id=str(dataset.pk))
    assert audit.label == "SECRET//BRAVO"
    assert json.loads(audit.canonical)["actor"] == "owner"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"classification": "COSMIC"}, "classification", id="unknown-level"),
        pytest.param({"compartments": ["ZULU"]}, "compartments", id="unknown-compartment"),
        pytest.param({"name": "harbour survey"}, "name", id="duplicate-name"),
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"compartments": "ALPHA"}, "compartments", id="compartments-not-a-list"),
        pytest.param({"classification": None}, "classification", id="missing-level"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    client: Client, cast: Cast, change: dict[str, Any], field: str
) -> None:
    sign_in(client, cast.owner)
    before = (Dataset.objects.count(), AuditRecord.objects.count())
    response = _post(client, {**GOOD, **change})
    assert response.status_code == 400
    assert field in response.json()
    assert (Dataset.objects.count(), AuditRecord.objects.count()) == before


@pytest.mark.parametrize(
    ("label", "field"),
    [
        pytest.param({"classification": "TOP SECRET", "compartments": []}, "classification", id="level-above"),
        pytest.param({"classification": "SECRET", "compartments": ["BRAVO"]}, "compartments", id="compartment"),
    ],
)
def test_no_write_up_above_the_creators_own_label(
    client: Client, cast: Cast, label: dict[str, Any], field: str
) -> None:
    limited = person("midmanager", "manager", "SECRET", ["ALPHA"])
    sign_in(client, limited)
    response = _post(client, {**GOOD, **label})
    assert response.status_code == 400
    assert "above your own clearance" in response.json()[field][0]
    assert not Dataset.objects.filter(name="new survey").exists()
    assert_one_denial(actor="midmanager", gate="label", permission="dataset.create")


def test_a_role_without_dataset_create_gets_an_audited_404(client: Client, cast: Cast) -> None:
    sign_in(client, cast.member)
    response = _post(client, GOOD)
    assert response.status_code == 404
    assert not Dataset.objects.filter(name="new survey").exists()
    assert_one_denial(actor="member", gate="role", permission="dataset.create")


def test_it_answers_anonymous_callers_401(client: Client, cast: Cast) -> None:
    assert _post(client, GOOD).status_code == 401
    assert not Dataset.objects.filter(name="new survey").exists()
