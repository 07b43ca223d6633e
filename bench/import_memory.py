"""Memory of a large import: the peak RSS growth of `import_archive` over a 1 GiB archive, against a 128 MiB budget.

The acceptance rule: importing a 1 GiB archive must not grow the importing process's peak RSS by 128 MiB or more,
whatever the archive holds, because the importer promises to hold one member at a time (`datasets.imports`). The
archive is about 1 GiB of realistic imagery: grainy photo-like JPEGs of 10-13 megapixels (~3.5 MiB each, one member
in eight grayscale), PNGs of ~2 megapixels (~4 MiB, one in eight), and one member in eight a 20-megapixel JPEG
(~6 MiB) that also gets a preview; every member is a different crop, so every SHA-256 differs and all of them are
imported. It is built once, as a tar (read as a forward stream) and as a zip (read by seeking), and cached under
/tmp keyed by its size and this generator's version; delete the folder to rebuild it.

Each format is imported in a child process of its own, a fresh Python started for the one import, so that nothing
the runner's other benchmarks left on the heap hides or adds growth. The child sets up Django, creates a fresh
dataset through the real action on behalf of a manager, reads its RSS, resets its high-water mark
(`/proc/self/clear_refs`), imports, and reads `VmHWM`: growth = peak - RSS before. The blob folder and the KEK live
in a temporary folder removed afterwards, and the dataset is deleted through the real action (rows, data key,
blobs). The ratio is budget / growth, so that, as for every other benchmark, higher is better: at or above the
goal of 1.0 the import stays inside the budget.

Run through the runner, which prepares the database: `.venv/bin/python bench/run.py import_memory`.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from django.test import override_settings
from PIL import Image, ImageDraw

from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import create_dataset, delete_dataset
from appliance.datasets.imports import import_archive
from appliance.datasets.models import Dataset
from bench._common import BenchResult

GOAL = 1.0
BUDGET_MIB = 128
ARCHIVE_MIB = 1024
GENERATOR_VERSION = 1
FORMATS = ("tar", "zip")
ROOT = Path(__file__).resolve().parent.parent
MANAGER = "bench-manager"
CONTEXT = AuditContext(component="system", actor=MANAGER, roles=("manager",))
MiB = 1 << 20
# The child is started with Django set up before this module is imported (its models need the app registry).
CHILD = "import django; django.setup(); from bench.import_memory import child; raise SystemExit(child())"


# ------------------------------------------------------------------------------------------- shared with others


@contextmanager
def isolated_vault(folder: Path) -> Iterator[None]:
    """Point the KEK and the blob folder into `folder` (development mode generates the KEK on first use)."""
    with override_settings(
        VAULT_PROVIDER="file", VAULT_PKCS11=None, VAULT_KEK_FILE=folder / "kek", VAULT_BLOB_DIR=folder / "blobs"
    ):
        yield


def bench_manager() -> User:
    """The manager on whose behalf the benchmarks import: cleared for what they create, kept between runs."""
    user, _ = User.objects.get_or_create(
        username=MANAGER, defaults={"roles": ["manager"], "clearance": "TOP SECRET", "compartments": ["ALPHA"]}
    )
    return user


@contextmanager
def scratch_dataset(by: User, purpose: str) -> Iterator[Dataset]:
    """A fresh SECRET//ALPHA dataset created through the real action, deleted (rows, key, blobs) afterwards."""
    dataset = create_dataset(
        by, name=f"bench {purpose} {uuid.uuid4().hex[:8]}", classification="SECRET", compartments=["ALPHA"]
    )
    try:
        yield dataset
    finally:
        delete_dataset(by, dataset=dataset, confirm_name=dataset.name, reason="benchmark data")


def photo_like(rng: random.Random, width: int, height: int) -> Image.Image:
    """A grainy, photo-like RGB picture: smooth colour fields, a few hundred hard-edged shapes, sensor-like noise.

    JPEG compresses it about as much as a real photograph (a 12-megapixel frame at quality 90 is ~3.5 MiB), which
    random noise alone would not."""
    picture = Image.frombytes("RGB", (width // 100, height // 100), rng.randbytes((width // 100) * (height // 100) * 3))
    picture = picture.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(picture)
    for _ in range(width * height // 50_000):
        x, y = rng.randrange(width), rng.randrange(height)
        box = (x, y, x + rng.randrange(20, 600), y + rng.randrange(20, 600))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = rng.randrange(3)
        if shape == 0:
            draw.rectangle(box, fill=colour)
        elif shape == 1:
            draw.ellipse(box, outline=colour, width=rng.randrange(1, 8))
        else:
            draw.line(box, fill=colour, width=rng.randrange(1, 6))
    grain = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    return Image.blend(picture, grain, 0.1)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


# ------------------------------------------------------------------------------------------------ the archive


def _members(total: int) -> Iterator[tuple[str, bytes]]:
    """Deterministic members, each a different crop of one of three photo-like bases, until `total` bytes."""
    rng = random.Random(GENERATOR_VERSION)
    bases = [photo_like(rng, 5200, 4000) for _ in range(3)]
    made = 0
    index = 0
    while made < total:
        base = bases[index % len(bases)]
        kind = index % 8
        if kind == 0:  # a lossless scan-like PNG of ~2 megapixels, ~4 MiB
            width, height, fmt = rng.randrange(1300, 1500), rng.randrange(1300, 1500), "PNG"
        elif kind == 1:  # 20 megapixels: over the preview threshold, so a preview is made too
            width, height, fmt = 5000 + rng.randrange(0, 200), 4000, "JPEG"
        else:  # a 12-megapixel camera frame
            width, height, fmt = rng.randrange(3800, 4200), rng.randrange(2800, 3200), "JPEG"
        left, top = rng.randrange(0, 5200 - width + 1), rng.randrange(0, 4000 - height + 1)
        crop = base.crop((left, top, left + width, top + height))
        megapixels = width * height // 1_000_000
        if fmt == "PNG":
            data, name = encode(crop, "PNG", compress_level=1), f"scans/{index:04d}-{megapixels}mp.png"
        else:
            if kind == 2:
                crop = crop.convert("L")
            quality = rng.randrange(88, 94)
            data, name = encode(crop, "JPEG", quality=quality), f"photos/{index:04d}-{megapixels}mp-{crop.mode}.jpg"
        made += len(data)
        index += 1
        yield name, data


def build_archives(total_mib: int = ARCHIVE_MIB) -> dict[str, Path]:
    """Return the tar and the zip of the same members, building them under /tmp only if they are not cached yet."""
    cache = Path(tempfile.gettempdir()) / f"appliance-bench-import-memory-v{GENERATOR_VERSION}-{total_mib}MiB"
    paths = {fmt: cache / f"imagery.{fmt}" for fmt in FORMATS}
    if all(path.exists() for path in paths.values()):
        return paths
    shutil.rmtree(cache, ignore_errors=True)
    staging = cache / "staging"
    staging.mkdir(parents=True)
    mtime = 1_790_000_000
    with (
        tarfile.open(staging / "imagery.tar", "w", format=tarfile.PAX_FORMAT) as tar,
        zipfile.ZipFile(staging / "imagery.zip", "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        for name, data in _members(total_mib * MiB):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            tar.addfile(info, io.BytesIO(data))
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 9, 21, 12, 0, 0)), data)
    for path in paths.values():
        (staging / path.name).rename(path)
    staging.rmdir()
    return paths


def _member_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


# ------------------------------------------------------------------------------------------------- the child


def _status_kib(field: str) -> int:
    """A `VmRSS`-like figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


class _Peak:
    """This process's peak RSS from now on: the kernel's high-water mark, reset to the current RSS; where the
    reset is not allowed, a thread sampling VmRSS every 2 ms (which can miss a peak shorter than that)."""

    def __init__(self) -> None:
        self.sampled = 0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
                clear.write("5")
            self.method = "vmhwm"
        except OSError:
            self.method = "sampled"
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.002):
            self.sampled = max(self.sampled, _status_kib("VmRSS"))

    def kib(self) -> int:
        if self.method == "vmhwm":
            return _status_kib("VmHWM")
        return max(self.sampled, _status_kib("VmRSS"))

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


def _import_measured(by: User, dataset: Dataset, archive: Path) -> dict[str, Any]:
    opened: list[tuple[float, int]] = []  # (time, peak KiB) at each time the importer opens the archive
    stored: list[tuple[int, int]] = []  # (RSS, peak) KiB after each stored member

    @contextmanager
    def open_archive() -> Iterator[BinaryIO]:
        opened.append((time.perf_counter(), peak.kib()))
        with archive.open("rb") as handle:
            yield handle

    def progress(done: int, total: int) -> None:
        stored.append((_status_kib("VmRSS"), peak.kib()))

    before = _status_kib("VmRSS")
    peak = _Peak()
    started = time.perf_counter()
    try:
        result = import_archive(by, dataset=dataset, name=archive.name, open_archive=open_archive, progress=progress)
        seconds = time.perf_counter() - started
        peak_kib = peak.kib()
    finally:
        peak.close()
    return {
        "items": len(result.items),
        "seconds": seconds,
        "inspect_seconds": opened[1][0] - started,
        "before_kib": before,
        "peak_kib": peak_kib,
        "inspect_peak_kib": opened[1][1],
        "first_stored_kib": stored[0][0],
        "last_stored_kib": stored[-1][0],
        # The member whose storing first reached the final peak (archive order), unless inspection set it.
        "peak_member": next(index for index, (_, high) in enumerate(stored) if high == stored[-1][1]),
        "peak_method": peak.method,
    }


def child() -> int:
    """In a fresh process: import sys.argv[1] with the vault in sys.argv[2]; print the figures as one JSON line."""
    archive, vault = Path(sys.argv[1]), Path(sys.argv[2])
    with isolated_vault(vault), audit_context(CONTEXT):
        manager = bench_manager()
        with scratch_dataset(manager, "import memory") as dataset:
            figures = _import_measured(manager, dataset, archive)
    print(json.dumps(figures), flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ the parent


def measure(fmt: str, archive: Path, members: list[str]) -> BenchResult:
    vault = Path(tempfile.mkdtemp(prefix="appliance-bench-vault-"))
    try:
        figures = _run_child(archive, vault)
        left = sorted(p.name for p in (vault / "blobs").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(vault, ignore_errors=True)
    assert figures["items"] == len(members), figures
    assert not left, f"blobs left behind after the dataset was deleted: {left[:5]}"
    size_mib = archive.stat().st_size / MiB
    growth_mib = (figures["peak_kib"] - figures["before_kib"]) / 1024
    during_inspection = figures["inspect_peak_kib"] >= figures["peak_kib"]
    peak_at = "inspection" if during_inspection else members[figures["peak_member"]]
    return BenchResult(
        name="import_memory" if fmt == "tar" else f"import_memory_{fmt}",
        ratio=BUDGET_MIB / max(growth_mib, 1.0),
        goal=GOAL,
        figures={
            "growth": f"{growth_mib:.1f}MiB",
            "budget": f"{BUDGET_MIB}MiB",
            "format": fmt,
            "archive": f"{size_mib:.0f}MiB",
            "members": str(len(members)),
            "rss_before": f"{figures['before_kib'] / 1024:.0f}MiB",
            "peak": f"{figures['peak_kib'] / 1024:.0f}MiB",
            "inspect_peak": f"{figures['inspect_peak_kib'] / 1024:.0f}MiB",
            "peak_at": peak_at,
            "store_drift": f"{(figures['last_stored_kib'] - figures['first_stored_kib']) / 1024:+.1f}MiB",
            "seconds": f"{figures['seconds']:.1f}",
            "inspect_seconds": f"{figures['inspect_seconds']:.1f}",
            "throughput": f"{size_mib / figures['seconds']:.1f}MiB/s",
            "peak_by": figures["peak_method"],
        },
    )


def _run_child(archive: Path, vault: Path) -> dict[str, Any]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "appliance.settings"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(archive), str(vault)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the import child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> list[BenchResult]:
    archives = build_archives()
    members = _member_names(archives["zip"])
    return [measure(fmt, archives[fmt], members) for fmt in FORMATS]
