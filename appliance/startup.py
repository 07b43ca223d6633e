"""Start-up checks of a serving or working process: the audit self-check, records left staged, which policy is
in force, the audit log's share of its storage budget (V-222483), and the vault's key provider (a missing or
exposed KEK file, or an HSM that refuses the PIN, stops start-up here rather than at the first image).

The audit self-check (V-222616) runs before the process appends anything: the newest signed checkpoint must
verify with a known key, its stored right edge must give its signed root, and the records since it must be dense
with leaf hashes matching their canonical text. It costs O(records since the newest checkpoint), whatever the
log's size. A failure raises an alert (logger `appliance.audit`, CRITICAL, which the site's log collection
forwards) and is recorded (`audit.selfcheck`, outcome `error`); in production the process then refuses to
start, because it would otherwise keep appending to, and signing over, a log it knows to be damaged.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from appliance.access.policy import get_policy
from appliance.auditlog.checkpoints import complete_interrupted_rotation
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.recorder import record
from appliance.auditlog.sequencer import drain_staged
from appliance.auditlog.storage import check_audit_storage
from appliance.auditlog.verification import VerifyResult, check_tail
from appliance.lib.config import ConfigError
from appliance.vault.blobs import sweep_orphans
from appliance.vault.keys import configured_provider
from appliance.vault.spool import sweep_spool

logger = logging.getLogger("appliance.audit")


class AuditSelfCheckFailed(RuntimeError):
    """The audit log failed its start-up self-check; a production process must not start."""


def _self_check() -> VerifyResult:
    try:
        complete_interrupted_rotation()
        return check_tail()
    except ConfigError as exc:  # the signing key is missing, unreadable or exposed
        return VerifyResult(ok=False, checked=0, problem=str(exc))


def run_audit_self_check() -> VerifyResult:
    """Check the log's tail and record the outcome; raise AuditSelfCheckFailed in production on failure."""
    result = _self_check()
    if result.ok:
        with transaction.atomic():
            record(
                action="audit.selfcheck",
                object_type="audit_log",
                object_id=settings.APPLIANCE_ID,
                details={"checked": result.checked, "checkpoints": result.checkpoints},
            )
        return result
    logger.critical("audit log self-check FAILED at %s", result.describe())
    try:
        with transaction.atomic():
            record(
                action="audit.selfcheck",
                outcome="error",
                object_type="audit_log",
                object_id=settings.APPLIANCE_ID,
                details={
                    "problem": result.problem,
                    "record": result.bad_seq,
                    "checkpoint": result.bad_checkpoint,
                },
            )
    except Exception:  # the alert above already went out; a log that cannot take the record is the same failure
        logger.critical("audit log self-check: the failure could not be recorded", exc_info=True)
    if settings.PRODUCTION:
        raise AuditSelfCheckFailed(f"audit log self-check FAILED at {result.describe()}; refusing to start")
    return result


def run_startup_checks(*, component: str) -> None:
    policy = get_policy()
    with audit_context(AuditContext(component=component, actor="system")):
        run_audit_self_check()
        # Records a process staged and did not live to sequence (killed right after its commit) go in now.
        moved = drain_staged()
        if moved:
            logger.warning("audit: %s staged records left by an earlier process were sequenced", moved)
        with transaction.atomic():
            record(
                action="policy.load",
                object_type="policy",
                object_id="policies",
                details={"files": dict(policy.file_hashes), "roles": sorted(policy.roles)},
            )
        check_audit_storage()
        configured_provider()  # raises ConfigError naming the setting; never logs key material
        swept = sweep_orphans() + sweep_spool()
        if swept:
            logger.warning(
                "vault: removed %s partial blob or upload spool file(s) left by a killed process", len(swept)
            )
