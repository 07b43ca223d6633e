"""Export throughput and memory: a COCO export of 100,000 annotations against `json.dump` of the same rows as
plain dicts, in the same run and database.

The export is the real path (`create_export`, then `execute_export` in this process): keyset reads of tasks and
annotations, conversion to COCO with each shape's area and our extension, deflate into a zip, AES-256-GCM STREAM
encryption and the blob written to disk, plus its audit records. The baseline is the least any exporter must do:
the same annotations, already in memory as plain dicts, serialised by `json.dump` into a writer that drops the
text. The ratio is export throughput / baseline throughput (higher is better); the goal of 0.2 says the exporter
may cost at most five times a bare serialisation of data it did not even have to read, encrypt or compress.

Peak memory is the growth of this process's peak RSS during the export (the kernel's high-water mark, reset just
before), which must stay far under the 200 MiB the product allows a 1,000,000-annotation export.

Set-up (not measured): a dataset of 1,000 item rows (no imagery is read for an annotations-only export), a
project with its schema and tasks through the real actions, and 100 annotations per task of mixed kinds written
with one bulk insert. `EXCHANGE_BENCH_ANNOTATIONS` changes the count (e.g. 1000000). The blob folder and KEK are
a temporary folder; the rows are removed afterwards (audit records, by design, stay).

Run through the runner, which prepares the database:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/h8_bench .venv/bin/python bench/run.py exchange_export`.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.test import override_settings

from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import create_dataset
from appliance.datasets.models import Dataset, Item
from appliance.exchange.actions import create_export
from appliance.exchange.jobs import execute_export
from appliance.exchange.models import Export
from appliance.labeling.actions import create_project, create_tasks
from appliance.labeling.models import Annotation, Project, Task
from bench._common import BenchResult

GOAL = 0.2
ANNOTATIONS = int(os.environ.get("EXCHANGE_BENCH_ANNOTATIONS", "100000"))
PER_TASK = 100
WIDTH, HEIGHT = 4000, 3000
MANAGER = "bench-exchange"
CONTEXT = AuditContext(component="system", actor=MANAGER, roles=("manager",))
SCHEMA = {
    "classes": [
        {"name": "vessel", "colour": "#ff0000", "attributes": [{"name": "moored", "kind": "checkbox"}]},
        {"name": "building", "colour": "#00ff00", "attributes": []},
    ]
}
MiB = 1 << 20


@contextmanager
def _isolated_vault(folder: Path) -> Iterator[None]:
    with override_settings(
        VAULT_PROVIDER="file", VAULT_PKCS11=None, VAULT_KEK_FILE=folder / "kek", VAULT_BLOB_DIR=folder / "blobs"
    ):
        yield


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def _shape(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(("box", "box", "polygon", "rotated_box"))
    x, y = rng.uniform(0, WIDTH - 200), rng.uniform(0, HEIGHT - 200)
    if kind == "box":
        geometry: Any = [x, y, rng.uniform(5, 200), rng.uniform(5, 200)]
    elif kind == "rotated_box":
        geometry = [x + 100, y + 100, rng.uniform(5, 150), rng.uniform(5, 150), rng.uniform(-179, 180)]
    else:
        geometry = [[x, y], [x + 150, y + 10], [x + 120, y + 140], [x + 5, y + 90]]
    if rng.random() < 0.5:
        return {
            "kind": kind,
            "geometry": geometry,
            "class_name": "vessel",
            "attributes": {"moored": rng.random() < 0.5},
        }
    return {"kind": kind, "geometry": geometry, "class_name": "building", "attributes": {}}


def project_of_placeholder_items(user: User, *, prefix: str, images: int) -> Project:
    """A SECRET project over `images` item rows that name no real blob (exports and imports here never read
    imagery), with its tasks: the setup both exchange benchmarks share."""
    tag = uuid.uuid4().hex[:8]
    dataset = create_dataset(user, name=f"{prefix}-{tag}", classification="SECRET", compartments=[])
    Item.objects.bulk_create(
        [
            Item(
                uid=uuid.uuid4().hex,
                dataset=dataset,
                name=f"img-{index:07d}.jpg",
                format="jpeg",
                width=WIDTH,
                height=HEIGHT,
                byte_size=1,
                sha256=f"{index:064x}",
                image_blob=uuid.uuid4().hex,
                thumbnail_blob=uuid.uuid4().hex,
                thumbnail_sha256="0" * 64,
                uploaded_by=user,
            )
            for index in range(images)
        ],
        batch_size=2000,
    )
    project = create_project(user, name=f"{prefix}-{tag}", dataset_ids=[dataset.pk], schema=SCHEMA)
    create_tasks(user, project=project)
    return project


def _set_up(user: User) -> Project:
    project = project_of_placeholder_items(user, prefix="bench-exchange", images=max(1, ANNOTATIONS // PER_TASK))
    schema = project.current_schema()
    rng = random.Random(8)
    task_ids = list(Task.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    batch: list[Annotation] = []
    for index in range(ANNOTATIONS):
        batch.append(
            Annotation(
                task_id=task_ids[index // PER_TASK % len(task_ids)],
                schema_version=schema,
                created_by=user,
                updated_by=user,
                **_shape(rng),
            )
        )
        if len(batch) == 5000:
            Annotation.objects.bulk_create(batch)
            batch = []
    Annotation.objects.bulk_create(batch)
    return project


def _tear_down(project: Project) -> None:
    datasets = list(project.datasets.all())
    Export.objects.filter(project=project).delete()
    Annotation.objects.filter(task__project=project).delete()
    Task.objects.filter(project=project).delete()
    project.delete()
    for dataset in datasets:
        Item.objects.filter(dataset=dataset).delete()
        Dataset.objects.filter(pk=dataset.pk).delete()


class _Discard:
    def write(self, text: str) -> int:
        return len(text)


def run() -> list[BenchResult]:
    user, _ = User.objects.get_or_create(
        username=MANAGER, defaults={"roles": ["manager"], "clearance": "TOP SECRET", "compartments": []}
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-exchange-") as folder,
        _isolated_vault(Path(folder)),
        audit_context(CONTEXT),
    ):
        project = _set_up(user)
        try:
            rss_before = _status_kib("VmRSS")
            exact = _reset_peak()
            started = time.perf_counter()
            export = create_export(user, project=project, format="coco")
            export = execute_export(export.pk)
            export_seconds = time.perf_counter() - started
            growth_mib = (_status_kib("VmHWM") - rss_before) / 1024 if exact else float("nan")
            if export.state != "done":
                raise RuntimeError(f"the export failed: {export.error}")
            rows = list(
                Annotation.objects.filter(task__project=project, deleted=False)
                .order_by("task_id", "id")
                .values("id", "task_id", "kind", "geometry", "class_name", "attributes")
            )
            started = time.perf_counter()
            json.dump(rows, _Discard())
            baseline_seconds = time.perf_counter() - started
        finally:
            _tear_down(project)
    ratio = baseline_seconds / export_seconds
    return [
        BenchResult(
            name="exchange_export",
            ratio=ratio,
            goal=GOAL,
            figures={
                "annotations": str(ANNOTATIONS),
                "export_s": f"{export_seconds:.2f}",
                "export_per_s": f"{ANNOTATIONS / export_seconds:.0f}",
                "json_dump_s": f"{baseline_seconds:.3f}",
                "json_dump_per_s": f"{ANNOTATIONS / baseline_seconds:.0f}",
                "peak_rss_growth_mib": f"{growth_mib:.1f}",
                "zip_mib": f"{export.size / MiB:.1f}",
            },
        )
    ]
