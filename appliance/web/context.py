"""Template context every page gets: the banner of the most sensitive thing on it, and who is signed in.

A view that shows labeled objects adds their labels with `mark_page(request, label)`; the banner is their least
upper bound, never lower than the policy's page level.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from appliance.access.labels import Label, highest
from appliance.access.policy import get_policy


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

    return {"banner": banner}
