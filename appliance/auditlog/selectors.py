"""Reads of the audit log for the auditor's workspace: filtered search in keyset pages, one record, the newest
checkpoint, and the archive of an export bundle.

Nothing here decides who may read: the views and API are guarded by `audit.read` / `audit.export` before they
call in, and the audit permissions are system-scoped (no label or membership gate applies to the log itself).

Pages are keyset pages on `seq`, newest first: a page is `seq < before` (or `seq > after`) ordered by `seq` with
`LIMIT`, never `OFFSET`, so the primary-key index finds page 10,000 of a million records as cheaply as page 1.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db.models import QuerySet

from appliance.auditlog.checkpoints import newest
from appliance.auditlog.export import export_bundle
from appliance.auditlog.models import AuditCheckpoint, AuditRecord

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class AuditFilters:
    """What an auditor searches by; empty strings and None mean "any". Times are UTC, `until` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    action: str = ""  # exact, or a prefix when it ends with "*" ("auth.*")
    object_type: str = ""
    object_id: str = ""
    outcome: str = ""
    label: str = ""

    def as_details(self) -> dict[str, str]:
        """The filters as the `audit.search` record states them: only those given, times in the record format."""
        given: dict[str, str] = {}
        if self.since is not None:
            given["from"] = _utc_text(self.since)
        if self.until is not None:
            given["to"] = _utc_text(self.until)
        for name in ("actor", "action", "object_type", "object_id", "outcome", "label"):
            value = getattr(self, name)
            if value:
                given[name] = value
        return given


@dataclass(frozen=True)
class RecordPage:
    """One page of records, newest first, with the cursors of its neighbours (None where there is none)."""

    items: list[AuditRecord]
    older_before: int | None  # pass as `before` for the next (older) page
    newer_after: int | None  # pass as `after` for the previous (newer) page


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def filtered_records(filters: AuditFilters) -> QuerySet[AuditRecord]:
    """The records matching `filters`, unordered and unsliced (each filter is an indexed column where it counts)."""
    queryset = AuditRecord.objects.all()
    if filters.since is not None:
        queryset = queryset.filter(time__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(time__lt=filters.until)
    if filters.actor:
        queryset = queryset.filter(actor=filters.actor)
    if filters.action.endswith("*"):
        queryset = queryset.filter(action__startswith=filters.action[:-1])
    elif filters.action:
        queryset = queryset.filter(action=filters.action)
    if filters.object_type:
        queryset = queryset.filter(object_type=filters.object_type)
    if filters.object_id:
        queryset = queryset.filter(object_id=filters.object_id)
    if filters.outcome:
        queryset = queryset.filter(outcome=filters.outcome)
    if filters.label:
        queryset = queryset.filter(label=filters.label)
    return queryset


def page_queryset(
    filters: AuditFilters, *, before: int | None = None, after: int | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> QuerySet[AuditRecord]:
    """The query of one keyset page plus one row (which tells whether the page has a further neighbour).

    Exposed so tests can read its SQL and see `seq <` / `seq >` with a LIMIT and no OFFSET.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    queryset = filtered_records(filters)
    if after is not None:
        return queryset.filter(seq__gt=after).order_by("seq")[: limit + 1]
    if before is not None:
        queryset = queryset.filter(seq__lt=before)
    return queryset.order_by("-seq")[: limit + 1]


def search_records(
    filters: AuditFilters, *, before: int | None = None, after: int | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> RecordPage:
    """One page, newest first: the newest matches, or those older than `before`, or those just newer than `after`.

    Costs two indexed range scans at most: the page itself, and an EXISTS probe for the neighbour on the side the
    page query cannot see.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    rows = list(page_queryset(filters, before=before, after=after, limit=limit))
    more = len(rows) > limit
    items = rows[:limit]
    if after is not None:
        items.reverse()  # fetched oldest first to take the records right after the cursor; shown newest first
    if not items:
        return RecordPage(items=[], older_before=None, newer_after=None)
    newest_seq, oldest_seq = items[0].seq, items[-1].seq
    if after is not None:
        has_newer = more
        has_older = filtered_records(filters).filter(seq__lt=oldest_seq).exists()
    else:
        has_older = more
        has_newer = before is not None and filtered_records(filters).filter(seq__gt=newest_seq).exists()
    return RecordPage(
        items=items,
        older_before=oldest_seq if has_older else None,
        newer_after=newest_seq if has_newer else None,
    )


def record_by_seq(seq: int) -> AuditRecord | None:
    return AuditRecord.objects.filter(seq=seq).first()


def newest_checkpoint() -> AuditCheckpoint | None:
    """The newest signed checkpoint: what a record's inclusion proof is checked against."""
    return newest()


def log_size() -> int:
    """How many records the log holds (seq is dense from 0, so this is the next seq)."""
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    return 0 if last is None else last + 1


@dataclass(frozen=True)
class ExportArchive:
    handle: IO[bytes]
    filename: str


def export_archive() -> ExportArchive:
    """Write an audit bundle (audited by `export_bundle`) and hand it back as an open .tar.gz, already unlinked.

    The bundle and archive are built in a private temporary folder under DATA_DIR/exports and removed before the
    download starts: the open handle keeps the archive readable, and no copy of the log outlives the response.
    """
    exports = Path(settings.DATA_DIR) / "exports"
    exports.mkdir(parents=True, exist_ok=True, mode=0o700)
    workdir = Path(tempfile.mkdtemp(prefix="audit-export-", dir=exports))
    try:
        bundle = export_bundle(workdir / "bundle")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"audit-bundle-{settings.APPLIANCE_ID}-{stamp}"
        archive = workdir / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(bundle, arcname=name)
        handle = archive.open("rb")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ExportArchive(handle=handle, filename=f"{name}.tar.gz")
