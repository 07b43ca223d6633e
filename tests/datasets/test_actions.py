"""The dataset actions: permission first, policy-validated input, one transaction with the audit record.

STIG: V-222425 (enforce approved authorizations), V-222426 (DAC: membership changes need dataset.manage).
"""

from __future__ import annotations

import json

import pytest

from appliance.access.decision import decide
from appliance.access.denial import AccessDenied
from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import DatasetError, add_member, create_dataset, remove_member
from tests.datasets.conftest import Cast, person


def test_create_requires_dataset_create(cast: Cast) -> None:
    with pytest.raises(AccessDenied):
        create_dataset(cast.member, name="x", classification="UNCLASSIFIED")


def test_create_stores_the_canonical_marking(cast: Cast) -> None:
    dataset = create_dataset(cast.owner, name="x", classification="SECRET", compartments=["BRAVO", "ALPHA"])
    assert dataset.compartments == "/ALPHA/BRAVO/"
    assert dataset.access_label().banner() == "SECRET//ALPHA/BRAVO"


def test_create_error_names_the_problem(cast: Cast) -> None:
    with pytest.raises(DatasetError, match=r"unknown compartment.*ZULU") as caught:
        create_dataset(cast.owner, name="x", classification="SECRET", compartments=["ZULU"])
    assert caught.value.field == "compartments"


def test_membership_is_need_to_know_not_clearance(cast: Cast) -> None:
    """A member added without clearance sees nothing until cleared; adding them leaks nothing."""
    newcomer = person("newcomer", "analyst", "UNCLASSIFIED", [])
    add_member(cast.owner, dataset=cast.dataset, member=newcomer)
    assert decide(newcomer, "dataset.view", cast.dataset).gate == "label"
    newcomer.clearance, newcomer.compartments = "SECRET", ["ALPHA"]
    newcomer.save()
    assert decide(newcomer, "dataset.view", cast.dataset)


def test_membership_changes_are_audited_and_bump_the_version(cast: Cast) -> None:
    before = cast.dataset.version
    remove_member(cast.owner, dataset=cast.dataset, member=cast.member)
    assert cast.dataset.version == before + 1
    assert not decide(cast.member, "dataset.view", cast.dataset)
    row = AuditRecord.objects.filter(action="dataset.member.remove").get()
    assert row.label == "SECRET//ALPHA"
    assert json.loads(row.canonical)["details"]["member"] == "member"


def test_membership_changes_need_dataset_manage_on_the_dataset(cast: Cast) -> None:
    """A manager who is not cleared for the dataset cannot manage it, role or not."""
    other = person("othermanager", "manager", "SECRET", [])
    for action in (add_member, remove_member):
        with pytest.raises(AccessDenied):
            action(other, dataset=cast.dataset, member=cast.not_member)
        with pytest.raises(AccessDenied):
            action(cast.member, dataset=cast.dataset, member=cast.not_member)


def test_the_last_member_cannot_be_removed(cast: Cast) -> None:
    dataset = create_dataset(cast.owner, name="solo", classification="UNCLASSIFIED")
    with pytest.raises(DatasetError, match="last member"):
        remove_member(cast.owner, dataset=dataset, member=cast.owner)


def test_adding_a_member_twice_is_refused(cast: Cast) -> None:
    with pytest.raises(DatasetError, match="already a member"):
        add_member(cast.owner, dataset=cast.dataset, member=cast.member)
