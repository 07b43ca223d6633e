"""The policy drives these tests: every role x every permission x every label case, generated from policies/.

The expected answer is computed here from the raw TOML (role grants the permission; for object-scoped permissions
also level rank ≤ clearance rank, compartments ⊆ held, membership), independently of `appliance.access`, and
compared with `decide()`; for object-scoped permissions `visible()` must return exactly the datasets `decide()`
allows (the list filter and the single decision never drift apart).

STIG: V-222425 (the application enforces approved authorizations for logical access), V-222426 (discretionary
access control over subjects and objects: membership), V-222427 (mandatory access control: clearance/compartments).
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from appliance.access.decision import decide, visible
from appliance.access.labels import compartment_marking
from appliance.access.policy import load_policy
from appliance.accounts.models import User
from appliance.datasets.models import Dataset

POLICY_DIR = Path(settings.POLICY_DIR)
POLICY = load_policy(POLICY_DIR)

# The raw TOML, read without the policy engine: the test's own oracle.
_ROLES_TOML = tomllib.loads((POLICY_DIR / "roles.toml").read_text("utf-8"))
_CLASSIFICATION_TOML = tomllib.loads((POLICY_DIR / "classification.toml").read_text("utf-8"))
GRANTS: dict[str, set[str]] = {name: set(spec["permissions"]) for name, spec in _ROLES_TOML["roles"].items()}
SCOPE: dict[str, str] = {name: spec["scope"] for name, spec in _ROLES_TOML["permissions"].items()}
RANK: dict[str, int] = {spec["name"]: index for index, spec in enumerate(_CLASSIFICATION_TOML["levels"])}

ROLES = sorted(POLICY.roles)
PERMISSIONS = sorted(POLICY.permissions)
LEVELS = [level.name for level in POLICY.classification.levels]
COMPARTMENTS = sorted(POLICY.classification.compartments)
# Object compartment sets: none, each single compartment, all of them (deduplicated when there is only one).
OBJECT_COMPARTMENTS = list(
    dict.fromkeys([frozenset(), *(frozenset({c}) for c in COMPARTMENTS), frozenset(COMPARTMENTS)])
)
# Subject compartment holdings: none, the first compartment (ALPHA in the shipped policy), all.
SUBJECT_COMPARTMENTS = {
    "none": frozenset(),
    "first": frozenset(COMPARTMENTS[:1]),
    "all": frozenset(COMPARTMENTS),
}


def expected(*, role: str, permission: str, clearance: str, held: frozenset[str], obj: Any | None) -> bool:
    """The TOML semantics, spelled out: role gate, then (object scope only) label gate and need-to-know gate."""
    if permission not in GRANTS.get(role, set()):
        return False
    if obj is None or SCOPE[permission] == "system":
        return True
    level, compartments, member = obj
    return RANK[level] <= RANK[clearance] and compartments <= held and member


@dataclass(frozen=True)
class Case:
    """One dataset of the matrix and its label facts (as the oracle sees them)."""

    dataset: Dataset
    level: str
    compartments: frozenset[str]
    member: bool


@dataclass(frozen=True)
class Person:
    user: User
    role: str
    clearance: str
    held: frozenset[str]


@dataclass(frozen=True)
class World:
    people: list[Person]
    cases: list[Case]


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Every subject and every object once for the whole module, inside one transaction rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        people = []
        for role, clearance, (held_key, held) in itertools.product(ROLES, LEVELS, SUBJECT_COMPARTMENTS.items()):
            username = f"m-{role}-{RANK[clearance]}-{held_key}".lower()
            user = User.objects.create(username=username, roles=[role], clearance=clearance, compartments=sorted(held))
            people.append(Person(user=user, role=role, clearance=clearance, held=held))
        creator = people[0].user
        cases = []
        through = Dataset.members.through
        links = []
        for level, compartments, member in itertools.product(LEVELS, OBJECT_COMPARTMENTS, (True, False)):
            dataset = Dataset.objects.create(
                name=f"matrix {level} {compartment_marking(compartments)} {'member' if member else 'outsider'}",
                classification=level,
                compartments=compartment_marking(compartments),
                created_by=creator,
            )
            if member:
                links.extend(through(dataset_id=dataset.pk, user_id=p.user.pk) for p in people)
            cases.append(Case(dataset=dataset, level=level, compartments=compartments, member=member))
        through.objects.bulk_create(links)
        yield World(people=people, cases=cases)
        transaction.set_rollback(True)


@pytest.mark.parametrize(
    ("role", "permission"),
    [pytest.param(r, p, id=f"{r}-{p}") for r, p in itertools.product(ROLES, PERMISSIONS)],
)
def test_decide_and_visible_follow_the_policy(world: World, db: None, role: str, permission: str) -> None:
    """decide() answers as the TOML says for every label case; visible() lists exactly what decide() allows."""
    mismatches: list[str] = []
    object_scoped = SCOPE[permission] == "object"
    for person in (p for p in world.people if p.role == role):
        subject = f"{role} cleared {person.clearance} holding {sorted(person.held)}"
        role_only = expected(role=role, permission=permission, clearance=person.clearance, held=person.held, obj=None)
        if bool(decide(person.user, permission)) != role_only:
            mismatches.append(f"{subject}, no object: decide={not role_only}, expected {role_only}")
        allowed_ids = set()
        for case in world.cases:
            want = expected(
                role=role,
                permission=permission,
                clearance=person.clearance,
                held=person.held,
                obj=(case.level, case.compartments, case.member),
            )
            got = bool(decide(person.user, permission, case.dataset))
            if got != want:
                mismatches.append(f"{subject} on {case.dataset.name}: decide={got}, expected {want}")
            if got:
                allowed_ids.add(case.dataset.pk)
        if object_scoped:
            listed = set(visible(Dataset.objects.all(), person.user, permission).values_list("pk", flat=True))
            if listed != allowed_ids:
                names = {c.dataset.pk: c.dataset.name for c in world.cases}
                extra = sorted(names[pk] for pk in listed - allowed_ids)
                missing = sorted(names[pk] for pk in allowed_ids - listed)
                mismatches.append(f"{subject}: visible() adds {extra} and misses {missing}")
    assert not mismatches, "\n".join(mismatches[:20])


def test_matrix_covers_every_case_the_policy_defines(world: World, db: None) -> None:
    """Guard against a silently shrinking matrix: the generated cases span the whole policy."""
    assert {p.role for p in world.people} == set(POLICY.roles)
    assert {p.clearance for p in world.people} == set(LEVELS)
    assert {c.level for c in world.cases} == set(LEVELS)
    assert len(world.cases) == len(LEVELS) * len(OBJECT_COMPARTMENTS) * 2
    assert frozenset(COMPARTMENTS) in {c.compartments for c in world.cases}
