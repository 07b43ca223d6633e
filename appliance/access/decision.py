"""The one access decision: role gate ∧ label gate ∧ need-to-know gate. Everything else asks this.

`decide` answers for one subject, one permission and optionally one object; `visible` builds the equivalent
queryset filter so that lists never post-filter in Python. Both read the same policy and the same object
description (`AccessFields`), which is what keeps them from drifting apart; the generated policy tests check
that they agree case by case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from appliance.access.labels import Label, dominates, marking_subset_regex, parse_marking
from appliance.access.policy import Policy, get_policy


class UnknownPermission(LookupError):
    """The code asked for a permission the policy does not declare: a programming error, never a denial."""


class Subject(Protocol):
    """Who asks: the user model satisfies this; so does any test double with the same attributes."""

    pk: Any
    is_active: bool
    roles: Sequence[str]
    clearance: str
    compartments: Sequence[str]

    @property
    def is_authenticated(self) -> bool: ...


@dataclass(frozen=True)
class AccessFields:
    """Names the fields of a protected model: its level, its compartment marking and its members relation."""

    level: str = "classification"
    compartments: str = "compartments"
    members: str = "members"


@runtime_checkable
class Protected(Protocol):
    """An object the label and need-to-know gates apply to."""

    access_fields: ClassVar[AccessFields]

    def access_label(self) -> Label: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    permission: str
    gate: str  # which gate decided: "granted", "authentication", "role", "label", "membership"

    def __bool__(self) -> bool:
        return self.allowed


def roles_grant(policy: Policy, roles: Sequence[str], permission: str) -> bool:
    """The role gate: does any role the subject holds grant `permission`? Unknown role names grant nothing."""
    return any(permission in policy.roles[role].permissions for role in roles if role in policy.roles)


def _check_permission(policy: Policy, permission: str) -> None:
    if permission not in policy.permissions:
        raise UnknownPermission(f"permission {permission!r} is not declared in policies/roles.toml")


def _is_member(subject: Subject, obj: Model, fields: AccessFields) -> bool:
    if subject.pk is None:
        return False
    return bool(getattr(obj, fields.members).filter(pk=subject.pk).exists())


def decide(subject: Subject, permission: str, obj: Protected | None = None) -> Decision:
    """Decide whether `subject` may exercise `permission` (on `obj`, when given). Deny unless every gate passes.

    For an object-scoped permission asked without an object, only the role gate applies: it answers "may this
    user ever do this", for menus and list pages whose rows are narrowed by `visible`.
    """
    policy = get_policy()
    _check_permission(policy, permission)
    if not subject.is_authenticated or not subject.is_active:
        return Decision(False, permission, "authentication")
    if not roles_grant(policy, subject.roles, permission):
        return Decision(False, permission, "role")
    if obj is None or policy.permissions[permission].scope == "system":
        return Decision(True, permission, "granted")
    if not dominates(
        clearance=subject.clearance,
        held=subject.compartments,
        label=obj.access_label(),
        classification=policy.classification,
    ):
        return Decision(False, permission, "label")
    if not isinstance(obj, Model) or not _is_member(subject, obj, obj.access_fields):
        return Decision(False, permission, "membership")
    return Decision(True, permission, "granted")


def visible[M: Model](queryset: QuerySet[M], subject: Subject, permission: str) -> QuerySet[M]:
    """Narrow `queryset` to the objects on which `decide(subject, permission, obj)` would allow, in SQL."""
    policy = get_policy()
    _check_permission(policy, permission)
    if not subject.is_authenticated or not subject.is_active:
        return queryset.none()
    if not roles_grant(policy, subject.roles, permission):
        return queryset.none()
    model = queryset.model
    fields: AccessFields | None = getattr(model, "access_fields", None)
    if fields is None:
        raise TypeError(f"{model.__name__} declares no access_fields; it cannot be filtered by label")
    levels = policy.classification.dominated_by(subject.clearance)
    members = model._meta.get_field(fields.members)
    through = members.remote_field.through  # type: ignore[union-attr]
    membership = through.objects.filter(
        **{members.m2m_field_name(): OuterRef("pk"), members.m2m_reverse_field_name(): subject.pk}  # type: ignore[union-attr]
    )
    return queryset.filter(
        Q(**{f"{fields.level}__in": levels})
        & Q(**{f"{fields.compartments}__regex": marking_subset_regex(subject.compartments)})
        & Exists(membership)
    )


def label_of(obj: Model, fields: AccessFields) -> Label:
    """Build the Label of a model instance from its access fields (for models implementing `access_label`)."""
    return Label(level=getattr(obj, fields.level), compartments=parse_marking(getattr(obj, fields.compartments)))
