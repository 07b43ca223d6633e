"""Throughput of an import: `import_images` of 1,000 1024 x 1024 JPEGs against bare Pillow decoding of the same files.

The baseline is the least any importer must do with an image it is given: open it with Pillow and decode every
pixel (`Image.open` + `load()`), from memory. Ours is the whole import as the upload page and the API run it, from
the same bytes in memory: inspection of every file (name, format, structure walked to its end, payload scan, full
decode, SHA-256), then storing each one (SHA-256 again, encrypted original blob, thumbnail, fsync of each blob and
its folder), then the items and the audit record in one transaction, into a fresh dataset created through the real
action on behalf of a manager. The ratio is ours_rate / bare_rate. No target has been set, so the line says
goal=0.0 and the ratio is reported.

The files are grainy photo-like crops (see `bench.import_memory.photo_like`), each different, at JPEG qualities 85
to 92: about 270 KiB each, as a camera or a tile server would give. They are built once (about 15 s) and cached
under /tmp keyed by their number and this generator's version; delete the folder to rebuild them. Bare and ours
alternate over ROUNDS rounds of N / ROUNDS different files each, so that drift on a shared machine falls on both
alike, after a warm-up of WARM_UP further files. The blob folder and the KEK live in a temporary folder removed
afterwards, and the dataset is deleted through the real action. Run through the runner: `.venv/bin/python
bench/run.py import_throughput`.
"""

from __future__ import annotations

import io
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from appliance.auditlog.context import audit_context
from appliance.datasets.imports import import_images
from appliance.datasets.models import Dataset
from bench._common import BenchResult
from bench.import_memory import CONTEXT, MiB, bench_manager, encode, isolated_vault, photo_like, scratch_dataset

GOAL = 0.0  # none set: the ratio is reported
N = 1_000
ROUNDS = 4
WARM_UP = 8
EDGE = 1024
GENERATOR_VERSION = 1


def build_files(n: int = N + WARM_UP) -> list[Path]:
    """Return n distinct 1024 x 1024 JPEGs, building them under /tmp only if they are not cached yet."""
    cache = Path(tempfile.gettempdir()) / f"appliance-bench-import-throughput-v{GENERATOR_VERSION}-{n}"
    names = [f"tile-{index:04d}.jpg" for index in range(n)]
    done = cache / "files"
    if done.is_dir():
        return [done / name for name in names]
    shutil.rmtree(cache, ignore_errors=True)
    staging = cache / "staging"
    staging.mkdir(parents=True)
    rng = random.Random(GENERATOR_VERSION)
    bases = [photo_like(rng, 3072, 3072) for _ in range(2)]
    for index, name in enumerate(names):
        left, top = rng.randrange(0, 3072 - EDGE), rng.randrange(0, 3072 - EDGE)
        crop = bases[index % len(bases)].crop((left, top, left + EDGE, top + EDGE))
        (staging / name).write_bytes(encode(crop, "JPEG", quality=rng.randrange(85, 93)))
    staging.rename(done)
    return [done / name for name in names]


def bare(files: list[tuple[str, bytes]]) -> int:
    """The baseline: decode every pixel of every file with Pillow; returns the pixels decoded."""
    pixels = 0
    for _, data in files:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            pixels += image.width * image.height
    return pixels


class Ours:
    """`import_images` on behalf of the bench manager, timing its two passes: the first read of a file's bytes
    starts the inspection, the read after the last one starts storing (which runs to the commit)."""

    def __init__(self) -> None:
        self.manager = bench_manager()
        self.inspect_seconds = self.store_seconds = 0.0

    def run(self, dataset: Dataset, files: list[tuple[str, bytes]]) -> int:
        reads = 0
        marks: list[float] = []

        def reader(data: bytes) -> Callable[[], bytes]:
            def read() -> bytes:
                nonlocal reads
                if reads in (0, len(files)):
                    marks.append(time.perf_counter())
                reads += 1
                return data

            return read

        result = import_images(self.manager, dataset=dataset, files=[(name, reader(data)) for name, data in files])
        ended = time.perf_counter()
        assert len(result.items) == len(files), result.report
        self.inspect_seconds += marks[1] - marks[0]
        self.store_seconds += ended - marks[1]
        return len(result.items)


def _load(paths: list[Path]) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in paths]


def measure(n: int = N, rounds: int = ROUNDS) -> BenchResult:
    paths = build_files(n + WARM_UP)
    warm, timed = paths[:WARM_UP], paths[WARM_UP:]
    per_round = -(-n // rounds)
    vault = Path(tempfile.mkdtemp(prefix="appliance-bench-vault-"))
    bare_seconds = ours_seconds = 0.0
    total_bytes = 0
    try:
        with isolated_vault(vault), audit_context(CONTEXT):
            ours = Ours()
            with scratch_dataset(ours.manager, "import throughput") as dataset:
                warm_files = _load(warm)
                bare(warm_files)
                ours.run(dataset, warm_files)
                ours.inspect_seconds = ours.store_seconds = 0.0
                for round_ in range(rounds):
                    files = _load(timed[round_ * per_round : (round_ + 1) * per_round])
                    total_bytes += sum(len(data) for _, data in files)
                    # Alternate which goes first, so neither always runs on the warmer side of a round.
                    order = ["bare", "ours"] if round_ % 2 == 0 else ["ours", "bare"]
                    for kind in order:
                        started = time.perf_counter()
                        if kind == "bare":
                            assert bare(files) == len(files) * EDGE * EDGE
                            bare_seconds += time.perf_counter() - started
                        else:
                            ours.run(dataset, files)
                            ours_seconds += time.perf_counter() - started
    finally:
        shutil.rmtree(vault, ignore_errors=True)
    bare_rate, ours_rate = n / bare_seconds, n / ours_seconds
    return BenchResult(
        name="import_throughput",
        ratio=ours_rate / bare_rate,
        goal=GOAL,
        figures={
            "ours": f"{ours_rate:.1f}/s",
            "bare": f"{bare_rate:.1f}/s",
            "ours_mib": f"{total_bytes / MiB / ours_seconds:.1f}MiB/s",
            "bare_mib": f"{total_bytes / MiB / bare_seconds:.1f}MiB/s",
            "inspect": f"{ours.inspect_seconds:.1f}s",
            "store": f"{ours.store_seconds:.1f}s",
            "n": str(n),
            "size": f"{total_bytes / n / 1024:.0f}KiB",
            "rounds": str(rounds),
        },
    )


def run() -> list[BenchResult]:
    return [measure()]
