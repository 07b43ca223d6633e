"""Turns the verdicts on every file of one import into a plan: what will be imported, and everything else, named.

Why a plan before any write: an import is all or nothing. The upload page, the API and `manage.py datasets
import` first inspect everything, show this report (every refusal at once, not the first one only) and import
only when `ok`. Identical images are imported once: two items with the same bytes would be labeled twice and
counted twice in every metric, so later copies are reported as duplicates of the first, by SHA-256.

Nothing here holds image bytes: `inspect_archive` and `inspect_files` keep only the facts, so a plan of ten
thousand images costs kilobytes. The caller reads the files again to store the accepted ones, and should check
each one's SHA-256 against the plan as it does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from appliance.datasets.intake.archives import ArchiveLimits, Member, iter_archive
from appliance.datasets.intake.images import ImageFacts, ImageLimits, inspect_image
from appliance.datasets.intake.outcomes import Rejected, Skipped, printable


@dataclass(frozen=True)
class Duplicate:
    """A file whose bytes are identical to an earlier accepted one; only `first` is imported."""

    name: str
    first: str
    sha256: str

    def __str__(self) -> str:
        return f"{printable(self.name)}: the same image as {printable(self.first)} (SHA-256 {self.sha256[:16]}…)"


@dataclass(frozen=True)
class ImportPlan:
    """Everything one import found, in the order the files came."""

    accepted: tuple[ImageFacts, ...]
    duplicates: tuple[Duplicate, ...]
    skipped: tuple[Skipped, ...]
    rejected: tuple[Rejected, ...]

    @property
    def ok(self) -> bool:
        """True when nothing was refused and there is at least one image to import."""
        return not self.rejected and bool(self.accepted)

    def report(self) -> list[str]:
        """One line per file, refusals first, for a page, an API response or a terminal."""
        lines = [f"rejected: {item}" for item in self.rejected]
        lines += [f"duplicate: {item}" for item in self.duplicates]
        lines += [f"skipped: {item}" for item in self.skipped]
        lines += [
            f"accepted: {printable(facts.name)} ({facts.format}, {facts.width} x {facts.height}, {facts.mode})"
            for facts in self.accepted
        ]
        if not self.accepted and not self.rejected:
            lines.append("nothing to import: no images were found")
        return lines


def plan_import(outcomes: Iterable[ImageFacts | Skipped | Rejected]) -> ImportPlan:
    """Sort verdicts into a plan; the first image with given bytes is accepted, later ones are duplicates of it."""
    accepted: list[ImageFacts] = []
    duplicates: list[Duplicate] = []
    skipped: list[Skipped] = []
    rejected: list[Rejected] = []
    first_by_hash: dict[str, ImageFacts] = {}
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            rejected.append(outcome)
        elif isinstance(outcome, Skipped):
            skipped.append(outcome)
        elif outcome.sha256 in first_by_hash:
            duplicates.append(Duplicate(outcome.name, first_by_hash[outcome.sha256].name, outcome.sha256))
        else:
            first_by_hash[outcome.sha256] = outcome
            accepted.append(outcome)
    return ImportPlan(tuple(accepted), tuple(duplicates), tuple(skipped), tuple(rejected))


def inspect_files(files: Iterable[tuple[str, bytes]], *, limits: ImageLimits) -> ImportPlan:
    """Inspect separately uploaded files (name, bytes); each is held only while it is inspected."""
    return plan_import(_inspect_each(name, data, limits) for name, data in files)


def inspect_archive(
    fileobj: BinaryIO, *, name: str, archive_limits: ArchiveLimits, image_limits: ImageLimits
) -> ImportPlan:
    """Inspect every member of an archive. A refusal of the whole archive ends the plan with that refusal."""
    return plan_import(_archive_outcomes(fileobj, name, archive_limits, image_limits))


def _archive_outcomes(
    fileobj: BinaryIO, name: str, archive_limits: ArchiveLimits, image_limits: ImageLimits
) -> Iterable[ImageFacts | Skipped | Rejected]:
    try:
        for entry in iter_archive(fileobj, name=name, limits=archive_limits):
            outcome = _inspect_each(entry.name, entry.data, image_limits) if isinstance(entry, Member) else entry
            del entry  # release the member's bytes before the archive reader produces the next one
            yield outcome
    except Rejected as refusal:
        yield refusal


def _inspect_each(name: str, data: bytes, limits: ImageLimits) -> ImageFacts | Rejected:
    try:
        return inspect_image(name, data, limits=limits)
    except Rejected as refusal:
        return refusal
