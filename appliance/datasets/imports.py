"""Importing imagery into a dataset: all or nothing, in three steps.

1. Inspect everything first (`appliance.datasets.intake`): every refusal is reported at once and nothing is
   written unless every file passes. Files already in the dataset (same SHA-256) are reported, not imported twice.
2. Store: each accepted image, its thumbnail and (for large images) its preview become vault blobs under the
   dataset's data key, encrypted as they are written; the plaintext exists only in memory, one image at a time.
3. Commit: the items and the import's audit record in one transaction.

If anything fails after step 1, the blobs already written are deleted before the error propagates: no partial blob
and no orphan row. A process killed during step 2 leaves only complete ciphertext blobs that no row names (and
`.partial` files the vault sweeps); they are unreadable without a row to name their identity and digest, and the
import can simply be run again. Archives are read twice (inspect, then store), one member in memory at a time,
so memory does not grow with the archive.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction

from appliance.access.decision import decide
from appliance.access.denial import deny
from appliance.accounts.models import User
from appliance.auditlog.recorder import record
from appliance.datasets import imagery
from appliance.datasets.intake import (
    ArchiveLimits,
    ImageFacts,
    ImageLimits,
    ImportPlan,
    Member,
    Rejected,
    inspect_archive,
    inspect_files,
    iter_archive,
)
from appliance.datasets.models import ITEM_NAME_MAX_LENGTH, Dataset, Item
from appliance.vault import blobs
from appliance.vault.actions import create_data_key
from appliance.vault.models import DataKey
from appliance.vault.stream import BlobIdentity

CHUNK = 1 << 20
Progress = Callable[[int, int], None]


class ImportRefused(ValueError):
    """Nothing was imported; `lines` says why, one line per file (the plan's report)."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("; ".join(lines[:5]) + (f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""))
        self.lines = list(lines)


@dataclass(frozen=True)
class ImportResult:
    items: list[Item]
    report: list[str]


@dataclass
class _Written:
    """Blob ids written by this import so far: deleted again if it fails."""

    ids: list[str] = field(default_factory=list)

    def forget_all(self) -> None:
        for blob_id in self.ids:
            blobs.delete(blob_id=blob_id)
        self.ids.clear()


def image_limits() -> ImageLimits:
    return ImageLimits(max_bytes=settings.IMPORT_MAX_IMAGE_BYTES, max_pixels=settings.IMPORT_MAX_PIXELS)


def archive_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_members=settings.IMPORT_MAX_ARCHIVE_MEMBERS,
        max_member_bytes=settings.IMPORT_MAX_IMAGE_BYTES,
        max_total_bytes=settings.IMPORT_MAX_ARCHIVE_BYTES,
    )


def identity(dataset: Dataset, item_uid: str, kind: str) -> BlobIdentity:
    """What a blob of this item is; bound into its encryption, so it decrypts as nothing else."""
    return BlobIdentity(dataset=f"dataset:{dataset.pk}", item=item_uid, kind=kind)


def data_key_of(dataset: Dataset) -> DataKey:
    """The dataset's data key, created (audited) on first use for a dataset made before the vault existed."""
    if dataset.data_key_id is not None:
        return dataset.data_key  # type: ignore[return-value]
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.data_key_id is None:
            locked.data_key = create_data_key(purpose=f"dataset:{dataset.pk}")
            locked.save(update_fields=["data_key"])
        dataset.data_key = locked.data_key
    return dataset.data_key  # type: ignore[return-value]


def _authorize(by: User, dataset: Dataset) -> None:
    decision = decide(by, "dataset.import", dataset)
    if not decision:
        raise deny(permission="dataset.import", gate=decision.gate, object_type="dataset", object_id=str(dataset.pk))


def _already_there(dataset: Dataset, plan: ImportPlan) -> dict[str, str]:
    """sha256 -> name of the item already holding those bytes, for the accepted files of `plan`."""
    hashes = [facts.sha256 for facts in plan.accepted]
    return dict(Item.objects.filter(dataset=dataset, sha256__in=hashes).values_list("sha256", "name"))


def _checked(dataset: Dataset, plan: ImportPlan) -> tuple[list[ImageFacts], list[str]]:
    """The facts to import and the report; raises ImportRefused when anything was refused or nothing is new."""
    report = plan.report()
    if plan.rejected:
        raise ImportRefused([line for line in report if line.startswith("rejected:")])
    present = _already_there(dataset, plan)
    fresh = [facts for facts in plan.accepted if facts.sha256 not in present]
    report += [
        f"already in the dataset: {facts.name} (as {present[facts.sha256]})"
        for facts in plan.accepted
        if facts.sha256 in present
    ]
    if not fresh:
        raise ImportRefused([*report, "nothing new to import"])
    return fresh, report


def _chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield view[start : start + CHUNK]  # type: ignore[misc]
    if not view:
        yield b""


def _store(key: DataKey, dataset: Dataset, facts: ImageFacts, data: bytes, written: _Written, by: User) -> Item:
    """Write the image's blobs (original, thumbnail, preview when large) and return its unsaved row."""
    uid = uuid.uuid4().hex
    original = blobs.put(key=key, identity=identity(dataset, uid, "image"), chunks=_chunks(data))
    written.ids.append(original.blob_id)
    if original.sha256 != facts.sha256:  # the bytes changed between inspection and storing (a re-read archive)
        raise ImportRefused([f"rejected: {facts.name}: its content changed while it was being imported"])
    small = imagery.thumbnail(data)
    thumb = blobs.put(key=key, identity=identity(dataset, uid, "thumbnail"), chunks=[small.data])
    written.ids.append(thumb.blob_id)
    preview_blob = preview_sha = ""
    if imagery.needs_preview(facts.width, facts.height, over_pixels=settings.PREVIEW_OVER_PIXELS):
        view = imagery.preview(data)
        stored = blobs.put(key=key, identity=identity(dataset, uid, "preview"), chunks=[view.data])
        written.ids.append(stored.blob_id)
        preview_blob, preview_sha = stored.blob_id, stored.sha256
    return Item(
        uid=uid,
        dataset=dataset,
        name=facts.name[:ITEM_NAME_MAX_LENGTH],
        format=facts.format,
        width=facts.width,
        height=facts.height,
        byte_size=facts.byte_size,
        sha256=facts.sha256,
        image_blob=original.blob_id,
        thumbnail_blob=thumb.blob_id,
        thumbnail_sha256=thumb.sha256,
        preview_blob=preview_blob,
        preview_sha256=preview_sha,
        uploaded_by=by,
    )


def _commit(by: User, dataset: Dataset, rows: list[Item], *, source: str, report: list[str]) -> list[Item]:
    try:
        with transaction.atomic():
            with transaction.atomic():  # a savepoint: only the insert's IntegrityError means "imported meanwhile"
                created = Item.objects.bulk_create(rows)
            record(
                action="dataset.import",
                object_type="dataset",
                object_id=dataset.pk,
                label=dataset.access_label().banner(),
                details={
                    "source": source[:255],
                    "count": len(created),
                    "items": [[item.pk, item.name, item.sha256] for item in created],
                    "not_imported": sum(1 for line in report if not line.startswith("accepted:")),
                },
            )
    except IntegrityError as exc:
        raise ImportRefused(
            ["some of these images were imported into the dataset at the same time; run again"]
        ) from exc
    return created


def _run(
    by: User,
    dataset: Dataset,
    plan: ImportPlan,
    images: Callable[[], Iterable[tuple[str, bytes]]],
    *,
    source: str,
    progress: Progress | None,
) -> ImportResult:
    fresh, report = _checked(dataset, plan)
    wanted = {facts.sha256: facts for facts in fresh}
    by_name = {facts.name: facts for facts in fresh}
    key = data_key_of(dataset)
    written = _Written()
    rows: list[Item] = []
    try:
        for name, data in images():
            facts = by_name.get(name)
            if facts is None or facts.sha256 not in wanted:
                continue
            rows.append(_store(key, dataset, facts, data, written, by))
            del wanted[facts.sha256]
            if progress is not None:
                progress(len(rows), len(fresh))
        if wanted:
            missing = ", ".join(facts.name for facts in list(wanted.values())[:5])
            raise ImportRefused([f"rejected: {missing}: no longer readable while being imported"])
        created = _commit(by, dataset, rows, source=source, report=report)
    except BaseException:
        written.forget_all()
        raise
    return ImportResult(items=created, report=report)


def import_images(
    by: User, *, dataset: Dataset, files: Sequence[tuple[str, Callable[[], bytes]]], progress: Progress | None = None
) -> ImportResult:
    """Import separately uploaded images, each a name and a way to read its bytes (read twice, one at a time, so
    a request of many files is never all in memory). Needs "dataset.import" on `dataset`."""
    _authorize(by, dataset)
    repeated = sorted(name for name, count in Counter(name for name, _ in files).items() if count > 1)
    if repeated:
        raise ImportRefused([f"rejected: {name}: sent more than once under this name" for name in repeated])

    def read_all() -> Iterator[tuple[str, bytes]]:
        for name, read in files:
            yield name, read()

    plan = inspect_files(read_all(), limits=image_limits())
    return _run(by, dataset, plan, read_all, source="upload", progress=progress)


def import_archive(
    by: User,
    *,
    dataset: Dataset,
    name: str,
    open_archive: Callable[[], AbstractContextManager[BinaryIO]],
    progress: Progress | None = None,
) -> ImportResult:
    """Import every image of a zip or tar archive; `open_archive` gives it from its start (it is read twice)."""
    _authorize(by, dataset)
    with open_archive() as handle:
        plan = inspect_archive(handle, name=name, archive_limits=archive_limits(), image_limits=image_limits())

    def members() -> Iterator[tuple[str, bytes]]:
        with open_archive() as handle:
            for entry in iter_archive(handle, name=name, limits=archive_limits()):
                if isinstance(entry, Member):
                    yield entry.name, entry.data
                elif isinstance(entry, Rejected):
                    raise ImportRefused([f"rejected: {entry}"])

    return _run(by, dataset, plan, members, source=name, progress=progress)
