"""Every view declares how it is guarded; the deny-by-default middleware refuses any view that does not.

`@requires("perm")` runs the role gate before the view (object gates run inside, through `authorize` or the
`access_<thing>` fetchers); `@public` marks the few views that must work before sign-in (consent banner, login,
static policy CSS). DRF views are guarded by `PolicyPermission` and name their `required_permission`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from appliance.access.drf import PolicyPermission

V = TypeVar("V", bound=Callable[..., Any])


@dataclass(frozen=True)
class AccessRule:
    public: bool
    permission: str = ""
    why: str = ""


def requires(permission: str) -> Callable[[V], V]:
    def mark(view: V) -> V:
        view.access_rule = AccessRule(public=False, permission=permission)  # type: ignore[attr-defined]
        return view

    return mark


def public(why: str) -> Callable[[V], V]:
    """Mark a view reachable without sign-in; `why` is required so a reviewer can judge each one."""

    def mark(view: V) -> V:
        view.access_rule = AccessRule(public=True, why=why)  # type: ignore[attr-defined]
        return view

    return mark


def rule_of(view: Callable[..., Any]) -> AccessRule | None:
    """The access rule of a resolved view function, including DRF class-based views; None when unguarded."""
    rule = getattr(view, "access_rule", None)
    if isinstance(rule, AccessRule):
        return rule
    view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if view_class is None:
        return None
    rule = getattr(view_class, "access_rule", None)
    if isinstance(rule, AccessRule):
        return rule
    permission = getattr(view_class, "required_permission", "")
    if permission and PolicyPermission in getattr(view_class, "permission_classes", ()):
        return AccessRule(public=False, permission=permission)
    return None
