"""Off-load the audit log to an auditor's bundle (V-222481), in the format of docs/formats/audit-bundle.md.

The export is itself an audited event, and the bundle proves it: `audit.export` is appended first, then a
checkpoint covering it is forced, and the bundle is written up to that checkpoint. So the bundle ends with a
signed commitment to every record in it, a truncated tail is detectable, and the next export shows this one.

Records are streamed from the database (`.iterator()`), never loaded at once, and the bundle is written after the
transaction has committed, so a long export never holds the append lock. A log that a new checkpoint cannot vouch
for (tampered) is still exported, as it is: the auditor's verifier names what is wrong, and the refusal is
logged CRITICAL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from appliance.auditlog.checkpoints import (
    CheckpointRefused,
    key_history,
    log_end,
    make_checkpoint,
    newest,
    range_of,
)
from appliance.auditlog.context import current
from appliance.auditlog.locking import hold_append_lock
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record
from appliance.auditlog.sequencer import drain_staged
from audit.bundle import write_bundle
from audit.encoding import leaf_hash
from audit.merkle import CompactRange, ProofError

logger = logging.getLogger("appliance.audit")


class ExportError(RuntimeError):
    """The export cannot be made (a bad `since`, an existing folder); nothing was recorded or written."""


def _records(start: int, end: int) -> Iterator[bytes]:
    rows = AuditRecord.objects.filter(seq__gte=start, seq__lt=end).order_by("seq").values_list("canonical", flat=True)
    for canonical in rows.iterator(chunk_size=2000):
        yield canonical.encode("utf-8")


def _prefix_edge(since: int) -> list[bytes]:
    """The right edge of the first `since` leaves: from the newest checkpoint at or before it, plus the leaves
    after that checkpoint (recomputed from the records). The bundle's first checkpoint authenticates it."""
    if since == 0:
        return []
    base = AuditCheckpoint.objects.filter(size__lte=since).order_by("-size").first()
    tree = CompactRange()
    if base is not None:
        try:
            tree = range_of(base)
        except ProofError:  # a damaged edge: start over; the verifier checks the result either way
            tree = CompactRange()
    for line in _records(tree.size, since):
        tree.append(leaf_hash(line))
    return tree.right_edge()


def _newest_size() -> int:
    row = newest()
    return -1 if row is None else row.size


def export_bundle(directory: Path, *, since: int = 0) -> Path:
    """Write records `since`..end with their checkpoints, keys and prefix to `directory` (new); return it."""
    directory = Path(directory)
    if directory.exists():
        raise ExportError(f"{directory} already exists; a bundle is written whole into a new folder")
    with transaction.atomic():
        hold_append_lock()
        drain_staged()  # every record committed before the export is in it
        end = log_end() + 1  # the export's own record is the last one in the bundle
        if not 0 <= since < end:
            raise ExportError(f"--since {since} is outside the log (0..{end - 2})")
        record(
            action="audit.export",
            object_type="audit_log",
            object_id=settings.APPLIANCE_ID,
            details={"since": since, "end": end, "directory": str(directory)},
        )
        try:
            with transaction.atomic():
                make_checkpoint(force=True)
        except CheckpointRefused as exc:
            logger.critical("audit export: no checkpoint covers the export (%s); exporting the log as it is", exc)
        # Checkpoints as of now: later appends may add more before the bundle is written, beyond its end.
        # One beyond `end` already (records removed from the tail) is exported, for the verifier to report.
        newest_size = _newest_size()
    keys = key_history()
    checkpoints = list(
        AuditCheckpoint.objects.filter(size__gte=since, size__lte=newest_size)
        .order_by("size")
        .values_list("size", "note")
        .iterator()
    )
    write_bundle(
        directory,
        origin=settings.APPLIANCE_ID,
        start=since,
        records=_records(since, end),
        checkpoints=checkpoints,
        keys=keys,
        prefix_right_edge=_prefix_edge(since),
        exported_by=current().actor or "system",
        exported_at=timezone.now(),
    )
    return directory
