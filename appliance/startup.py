"""Start-up checks of a serving or working process: record which policy is in force (its files' SHA-256)."""

from __future__ import annotations

from django.db import transaction

from appliance.access.policy import get_policy
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.recorder import record


def run_startup_checks(*, component: str) -> None:
    policy = get_policy()
    with audit_context(AuditContext(component=component, actor="system")), transaction.atomic():
        record(
            action="policy.load",
            object_type="policy",
            object_id="policies",
            details={"files": dict(policy.file_hashes), "roles": sorted(policy.roles)},
        )
