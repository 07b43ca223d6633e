"""Reads of the exchange app, already narrowed by access: an export and its releases are reached only through
their project's gates (label and membership), so whoever may not see the project sees none of them, and every
refusal is the audited 404."""

from __future__ import annotations

from typing import Any

from appliance.access.decision import Subject, decide
from appliance.access.denial import deny
from appliance.exchange.models import Export, Recipient, Release
from appliance.labeling.models import Project

MAX_LISTED = 100


def access_export(user: Subject, export_id: Any, permission: str) -> Export:
    export = Export.objects.select_related("project", "data_key").filter(pk=export_id).first()
    if export is None:
        raise deny(permission=permission, gate="missing", object_type="export", object_id=str(export_id))
    decision = decide(user, permission, export.project)
    if not decision:
        raise deny(permission=permission, gate=decision.gate, object_type="export", object_id=str(export_id))
    return export


def access_release(user: Subject, release_id: Any, permission: str) -> Release:
    release = (
        Release.objects.select_related("export__project", "export__data_key", "recipient", "requested_by")
        .filter(pk=release_id)
        .first()
    )
    if release is None:
        raise deny(permission=permission, gate="missing", object_type="release", object_id=str(release_id))
    decision = decide(user, permission, release.export.project)
    if not decision:
        raise deny(permission=permission, gate=decision.gate, object_type="release", object_id=str(release_id))
    return release


def exports_of(project: Project) -> list[Export]:
    """The project's newest exports (the caller has already passed the project's gates)."""
    return list(Export.objects.filter(project=project).select_related("created_by").order_by("-id")[:MAX_LISTED])


def releases_of(project: Project) -> list[Release]:
    return list(
        Release.objects.filter(export__project=project)
        .select_related("export", "recipient", "requested_by", "decided_by")
        .order_by("-id")[:MAX_LISTED]
    )


def active_recipients() -> list[Recipient]:
    return list(Recipient.objects.filter(revoked_at__isnull=True).order_by("name")[:MAX_LISTED])
