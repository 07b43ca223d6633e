"""Template context every page gets: the banner of the most sensitive thing on it, who is signed in, and the
work areas the policy opens to them (the navigation).

A view that shows labeled objects adds their labels with `mark_page(request, label)`; the banner is their least
upper bound, never lower than the policy's page level.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from appliance.access.decision import roles_grant
from appliance.access.labels import Label, highest
from appliance.access.policy import get_policy

# The navigation: a link shows only to those whose roles grant one of its permissions (the role gate; the pages still
# check every gate themselves). A link that everyone would follow into a refusal is noise, and an audited one.
NAVIGATION = (
    (("dataset.view",), "Datasets", "datasets:list"),
    (("dataset.view",), "Projects", "projects:list"),
    (("model.manage", "project.manage"), "Models", "inference:list"),
    (("export.request", "export.approve"), "Exchange", "exchange:index"),
    (("audit.read",), "Audit log", "auditlog:search"),
    (("account.self",), "API tokens", "accounts:tokens"),
)


def mark_page(request: HttpRequest, label: Label) -> None:
    labels: list[Label] = getattr(request, "page_labels", [])
    labels.append(label)
    request.page_labels = labels  # type: ignore[attr-defined]


def page_label(request: HttpRequest) -> Label:
    classification = get_policy().classification
    return highest(getattr(request, "page_labels", []), classification)


def page_context(request: HttpRequest) -> dict[str, Any]:
    classification = get_policy().classification

    def banner() -> dict[str, str]:
        label = page_label(request)
        level = classification.level(label.level)
        return {"text": label.banner(), "css": f"level-{level.rank}"}

    def navigation() -> list[dict[str, str]]:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return []
        policy = get_policy()
        roles = list(user.roles)
        return [
            {"label": label, "url": reverse(name)}
            for permissions, label, name in NAVIGATION
            if any(roles_grant(policy, roles, permission) for permission in permissions)
        ]

    return {"banner": banner, "navigation": navigation}
