"""Import memory and throughput: a COCO file of 1,000,000 annotations imported through the real path, with the
growth of this process's peak RSS measured against the 200 MiB the product allows (the export's bound).

The import is what the page and the API do (`import_annotations` on an `EncryptedUpload`: the file encrypted in a
spool on disk, read back one segment at a time): the SHA-256 scan, the scan of images and categories, the scan that
checks every annotation (structure, geometry inside the image, class, attributes), then in one transaction the scan
that writes annotations and their first revisions in batches, and the audit record. The ratio is peak RSS growth /
200 MiB (lower is better; the goal is to stay under 1). For scale, `json.loads` of the same file, the least a
reader that holds the file whole must spend, is measured in a child process (`whole_file_json_loads_mib`) when
`EXCHANGE_BENCH_WHOLE=1`.

Set-up (not measured): a dataset of item rows (no imagery is read), a project with its schema and tasks through
the real actions, 100 annotations per image of mixed kinds (boxes, rotated boxes, polygons) written as our export
writes them (`coco.iter_coco`) into the spool. `EXCHANGE_BENCH_ANNOTATIONS` changes the count (default
1,000,000). The blob folder and KEK are a temporary folder; the rows are removed afterwards (audit records, by
design, stay).

Run through the runner, which prepares the database:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/h8_bench .venv/bin/python bench/run.py exchange_import`.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from appliance.accounts.models import User
from appliance.auditlog.context import audit_context
from appliance.datasets.models import Dataset, Item
from appliance.datasets.uploads import EncryptedUpload
from appliance.exchange.actions import import_annotations
from appliance.exchange.formats.coco import iter_coco
from appliance.exchange.formats.records import DropLog, Frame, Shape, class_defs
from appliance.labeling.models import Annotation, AnnotationRevision, Project, Task
from appliance.vault.spool import Spool
from bench._common import BenchResult
from bench.exchange_export import (
    CONTEXT,
    HEIGHT,
    MANAGER,
    PER_TASK,
    SCHEMA,
    WIDTH,
    MiB,
    _isolated_vault,
    _reset_peak,
    _shape,
    _status_kib,
    project_of_placeholder_items,
)

GOAL = 1.0
BOUND_MIB = 200
ANNOTATIONS = int(os.environ.get("EXCHANGE_BENCH_ANNOTATIONS", "1000000"))


def _set_up(user: User) -> tuple[Project, list[Frame]]:
    images = max(1, ANNOTATIONS // PER_TASK)
    project = project_of_placeholder_items(user, prefix="bench-import", images=images)
    names = [f"img-{index:07d}.jpg" for index in range(images)]
    return project, [Frame(index + 1, name, WIDTH, HEIGHT) for index, name in enumerate(names)]


def _frames(frames: list[Frame]) -> list[Frame]:
    """The frames with their shapes, made again on each call (the writer calls twice), one image at a time."""
    rng = random.Random(8)
    result = []
    for index, frame in enumerate(frames):
        count = min(PER_TASK, ANNOTATIONS - index * PER_TASK)
        shapes = tuple(
            Shape(s["kind"], s["geometry"], s["class_name"], s["attributes"])
            for s in (_shape(rng) for _ in range(count))
        )
        result.append(Frame(frame.id, frame.file_name, frame.width, frame.height, shapes))
    return result


def _spool(frames: list[Frame], folder: Path) -> EncryptedUpload:
    spool = Spool()
    chunks = iter_coco(
        classes=class_defs(cast(list[dict[str, Any]], SCHEMA["classes"])),
        frames=lambda: (_frames([frame])[0] for frame in frames),
        marking="SECRET",
        project="bench",
        drops=DropLog(),
    )
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) >= 1 << 20:
            spool.write(bytes(buffer))
            buffer.clear()
    spool.write(bytes(buffer))
    spool.close_for_writing()
    if os.environ.get("EXCHANGE_BENCH_WHOLE") == "1":
        with (folder / "instances.json").open("wb") as out, spool.open() as reader:
            while chunk := reader.read(1 << 20):
                out.write(chunk)
    return EncryptedUpload(
        spool, name="instances.json", content_type="application/json", charset=None, content_type_extra=None
    )


WHOLE = """
import json, sys
def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
before = kib("VmRSS")
with open(sys.argv[1], "rb") as f:
    document = json.loads(f.read())
print((kib("VmHWM") - before) / 1024)
"""


def _whole_file_mib(folder: Path) -> str:
    path = folder / "instances.json"
    if not path.exists():
        return "not-measured"
    done = subprocess.run([sys.executable, "-c", WHOLE, str(path)], capture_output=True, text=True, check=True)
    return f"{float(done.stdout):.1f}"


def _tear_down(project: Project) -> None:
    datasets = list(project.datasets.all())
    AnnotationRevision.objects.filter(annotation__task__project=project).delete()
    Annotation.objects.filter(task__project=project).delete()
    Task.objects.filter(project=project).delete()
    project.delete()
    for dataset in datasets:
        Item.objects.filter(dataset=dataset).delete()
        Dataset.objects.filter(pk=dataset.pk).delete()


def run() -> list[BenchResult]:
    user, _ = User.objects.get_or_create(
        username=MANAGER, defaults={"roles": ["manager"], "clearance": "TOP SECRET", "compartments": []}
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-import-") as folder,
        _isolated_vault(Path(folder)),
        audit_context(CONTEXT),
    ):
        project, frames = _set_up(user)
        upload = _spool(frames, Path(folder))
        try:
            del frames
            rss_before = _status_kib("VmRSS")
            exact = _reset_peak()
            started = time.perf_counter()
            summary = import_annotations(
                user, project=project, format="coco", stream=upload, file_name="instances.json"
            )
            import_seconds = time.perf_counter() - started
            growth_mib = (_status_kib("VmHWM") - rss_before) / 1024 if exact else float("nan")
            size_mib = (upload.size or 0) / MiB
            written = Annotation.objects.filter(task__project=project, deleted=False).count()
            if summary["create"] != ANNOTATIONS or written != ANNOTATIONS:
                raise RuntimeError(f"imported {summary['create']} ({written} rows), not {ANNOTATIONS}")
            whole = _whole_file_mib(Path(folder))
        finally:
            upload.close()
            _tear_down(project)
    return [
        BenchResult(
            name="exchange_import",
            ratio=growth_mib / BOUND_MIB,
            goal=GOAL,
            figures={
                "annotations": str(ANNOTATIONS),
                "peak_rss_growth_mib": f"{growth_mib:.1f}",
                "bound_mib": str(BOUND_MIB),
                "import_s": f"{import_seconds:.1f}",
                "import_per_s": f"{ANNOTATIONS / import_seconds:.0f}",
                "file_mib": f"{size_mib:.1f}",
                "whole_file_json_loads_mib": whole,
            },
        )
    ]
