"""The cast of the dataset endpoint tests: one SECRET//ALPHA dataset and a subject for each way to be refused.

Users are created without a password (hashing at the policy's 1.2 M PBKDF2 iterations would dominate the run
time) and signed in with `tests.conftest.sign_in`; the dataset is created through the real action.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from appliance.accounts.models import User
from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import add_member, create_dataset
from appliance.datasets.models import Dataset


def person(username: str, role: str, clearance: str, compartments: list[str]) -> User:
    return User.objects.create(username=username, roles=[role], clearance=clearance, compartments=compartments)


@dataclass(frozen=True)
class Cast:
    dataset: Dataset
    owner: User  # manager, TOP SECRET, all compartments, created the dataset
    member: User  # analyst, SECRET, ALPHA, member: allowed
    low_clearance: User  # analyst, CONFIDENTIAL, ALPHA, member: refused by the label gate (level)
    no_compartment: User  # analyst, SECRET, no compartment, member: refused by the label gate (compartment)
    not_member: User  # analyst, SECRET, ALPHA, not a member: refused by need-to-know
    wrong_role: User  # auditor, TOP SECRET, ALPHA, member: refused by the role gate


@pytest.fixture
def cast(db: None) -> Cast:
    owner = person("owner", "manager", "TOP SECRET", ["ALPHA", "BRAVO"])
    dataset = create_dataset(
        owner, name="harbour survey", description="", classification="SECRET", compartments=["ALPHA"]
    )
    people: dict[str, User] = {
        "member": person("member", "analyst", "SECRET", ["ALPHA"]),
        "low_clearance": person("low", "analyst", "CONFIDENTIAL", ["ALPHA"]),
        "no_compartment": person("nocomp", "analyst", "SECRET", []),
        "not_member": person("stranger", "analyst", "SECRET", ["ALPHA"]),
        "wrong_role": person("watcher", "auditor", "TOP SECRET", ["ALPHA"]),
    }
    for key, user in people.items():
        if key != "not_member":
            add_member(owner, dataset=dataset, member=user)
    return Cast(dataset=dataset, owner=owner, **people)


# The refused subjects of the label and need-to-know gates, and the gate each must be refused by.
HIDDEN_FROM = [
    pytest.param("low_clearance", "label", id="lacking-clearance"),
    pytest.param("no_compartment", "label", id="lacking-compartment"),
    pytest.param("not_member", "membership", id="lacking-membership"),
]


def denials() -> list[dict[str, Any]]:
    """The bodies of the access.denied records, oldest first."""
    rows = AuditRecord.objects.filter(action="access.denied").order_by("seq")
    return [json.loads(row.canonical) for row in rows]


def assert_one_denial(*, actor: str, gate: str, permission: str, object_id: str = "") -> None:
    found = denials()
    assert len(found) == 1, found
    body = found[0]
    assert body["outcome"] == "denied"
    assert body["actor"] == actor
    assert body["details"]["gate"] == gate
    assert body["details"]["permission"] == permission
    if object_id:
        assert body["object"] == {"type": "dataset", "id": object_id}
