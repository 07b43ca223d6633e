"""Edge cases of the access decision that the generated matrix cannot reach: unknown names, inactive accounts,
permissions without an object, undeclared permissions. Each holds for every permission the policy declares.

STIG: V-222425 (enforce approved authorizations), V-222426 (DAC over subjects and objects).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from appliance.access.decision import UnknownPermission, decide, visible
from appliance.access.labels import compartment_marking
from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.datasets.models import Dataset

PERMISSIONS = sorted(get_policy().permissions)
OBJECT_PERMISSIONS = [p for p in PERMISSIONS if get_policy().permissions[p].scope == "object"]
EVERY_ROLE = sorted(get_policy().roles)
TOP = get_policy().classification.levels[-1].name
BOTTOM = get_policy().classification.levels[0].name
ALL_COMPARTMENTS = sorted(get_policy().classification.compartments)


def _user(username: str, *, roles: list[str], clearance: str = TOP, active: bool = True) -> User:
    return User.objects.create(
        username=username, roles=roles, clearance=clearance, compartments=ALL_COMPARTMENTS, is_active=active
    )


def _dataset(creator: User, *, level: str = BOTTOM, members: list[User]) -> Dataset:
    dataset = Dataset.objects.create(
        name=f"props {level} {len(members)}", classification=level, compartments="/", created_by=creator
    )
    dataset.members.add(*members)
    return dataset


def test_unknown_role_grants_nothing(db: None) -> None:
    ghost = _user("ghost", roles=["no-such-role"])
    dataset = _dataset(ghost, members=[ghost])
    for permission in PERMISSIONS:
        assert not decide(ghost, permission), permission
        assert decide(ghost, permission).gate == "role"
        assert not decide(ghost, permission, dataset), permission
    for permission in OBJECT_PERMISSIONS:
        assert not visible(Dataset.objects.all(), ghost, permission).exists(), permission


def test_unknown_role_beside_a_known_one_adds_nothing(db: None) -> None:
    """An unknown name in the role list is ignored, not an error and not a wildcard."""
    for role in EVERY_ROLE:
        plain = _user(f"plain-{role}", roles=[role])
        mixed = _user(f"mixed-{role}", roles=[role, "no-such-role"])
        for permission in PERMISSIONS:
            assert bool(decide(plain, permission)) == bool(decide(mixed, permission)), (role, permission)


def test_unknown_clearance_sees_nothing(db: None) -> None:
    """A clearance the policy does not define dominates no level, not even the lowest."""
    everyone = sorted({p for role in get_policy().roles.values() for p in role.permissions})
    odd = _user("odd", roles=EVERY_ROLE[:1], clearance="COSMIC")
    odd.roles = [r for r in EVERY_ROLE if r != "auditor"]  # every role that grants an object permission
    odd.save()
    dataset = _dataset(odd, level=BOTTOM, members=[odd])
    for permission in OBJECT_PERMISSIONS:
        if permission not in everyone:
            continue
        decision = decide(odd, permission, dataset)
        assert not decision, permission
        assert decision.gate == "label"
        assert not visible(Dataset.objects.all(), odd, permission).exists(), permission


def test_inactive_users_are_denied_everything(db: None) -> None:
    gone = _user("gone", roles=EVERY_ROLE, active=False)
    dataset = _dataset(gone, members=[gone])
    for permission in PERMISSIONS:
        assert decide(gone, permission).gate == "authentication", permission
        assert not decide(gone, permission, dataset), permission
    for permission in OBJECT_PERMISSIONS:
        assert not visible(Dataset.objects.all(), gone, permission).exists(), permission


def test_anonymous_is_denied_everything(db: None) -> None:
    nobody = AnonymousUser()
    for permission in PERMISSIONS:
        assert decide(nobody, permission).gate == "authentication", permission  # type: ignore[arg-type]
    for permission in OBJECT_PERMISSIONS:
        assert not visible(Dataset.objects.all(), nobody, permission).exists()  # type: ignore[arg-type]


def test_object_permission_without_an_object_is_the_role_gate_only(db: None) -> None:
    """Asked without an object ("may this user ever view datasets?"), only the role gate applies: an outsider
    with no clearance and no membership still passes, and the list they see is empty."""
    policy = get_policy()
    for role in EVERY_ROLE:
        outsider = User.objects.create(username=f"out-{role}", roles=[role], clearance=BOTTOM, compartments=[])
        owner = _user(f"own-{role}", roles=[role])
        Dataset.objects.create(
            name=f"secret of {role}",
            classification=TOP,
            compartments=compartment_marking(ALL_COMPARTMENTS),
            created_by=owner,
        ).members.add(owner)
        for permission in OBJECT_PERMISSIONS:
            granted = permission in policy.roles[role].permissions
            assert bool(decide(outsider, permission)) == granted, (role, permission)
            assert not visible(Dataset.objects.all(), outsider, permission).exists()


def test_membership_alone_is_not_enough_and_clearance_alone_is_not_enough(db: None) -> None:
    """Need-to-know and the label gate are independent: each one refuses on its own."""
    cleared = _user("cleared", roles=EVERY_ROLE)
    member = User.objects.create(username="member", roles=EVERY_ROLE, clearance=BOTTOM, compartments=[])
    dataset = Dataset.objects.create(name="top", classification=TOP, compartments="/", created_by=cleared)
    dataset.members.add(member)
    for permission in OBJECT_PERMISSIONS:
        assert decide(cleared, permission, dataset).gate == "membership"
        assert decide(member, permission, dataset).gate == "label"


@pytest.mark.parametrize("permission", ["dataset.delete", "", "DATASET.VIEW", "dataset.view "])
def test_undeclared_permissions_are_a_programming_error(db: None, permission: str) -> None:
    """Asking for a permission the policy does not declare raises, for everyone: never a silent deny or allow."""
    someone = _user("someone", roles=EVERY_ROLE)
    dataset = _dataset(someone, members=[someone])
    with pytest.raises(UnknownPermission, match="not declared"):
        decide(someone, permission)
    with pytest.raises(UnknownPermission):
        decide(someone, permission, dataset)
    with pytest.raises(UnknownPermission):
        decide(AnonymousUser(), permission)  # type: ignore[arg-type]
    with pytest.raises(UnknownPermission):
        visible(Dataset.objects.all(), someone, permission)
