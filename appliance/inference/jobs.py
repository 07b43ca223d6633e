"""Pre-labeling jobs on Django's tasks framework (database queue): enqueue, and the run a worker executes.

A run claims its job, checks again that the person who started it may still run pre-labeling on the project and
that the model may still see its data, then walks the project's new tasks that this job has not finished yet:
decrypt and preprocess the next images on a small thread pool while the current batch is inferred (overlapping
image decoding with inference), batch where the model's batch axis is dynamic, decode, and store each task's
proposals with its done-mark (`actions.store_proposals`). Cancellation is polled between batches. A worker
killed mid-run leaves the job "running" with a stale heartbeat; `actions.resume_job` queues it again and the
new run skips every task already marked done, so nothing is proposed twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db import transaction
from django.db.models import F, Q
from django.tasks import task
from django.utils import timezone

from appliance.access.decision import decide
from appliance.access.denial import AccessDenied
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.recorder import record
from appliance.datasets.imports import data_key_of, identity
from appliance.inference import actions, conf, runtime
from appliance.inference.decoders import decode
from appliance.inference.manifest import InputSpec
from appliance.inference.models import Job, JobState, JobTask
from appliance.inference.preprocess import Prepared, preprocess
from appliance.labeling.models import Task, TaskState
from appliance.vault import blobs
from appliance.vault.models import DataKey

PREFETCH = 4

type Progress = Callable[[Job], None]


def enqueue_job(job: Job) -> Job:
    """Queue the job for any worker (`manage.py db_worker`); the queue row commits with the caller's transaction."""
    result = run_prelabel_job.enqueue(job.pk)
    Job.objects.filter(pk=job.pk).update(task_result_id=str(result.id))
    job.task_result_id = str(result.id)
    return job


def resume_abandoned() -> list[Job]:
    """Queue again every job whose worker died: running, and silent for longer than `inference.stale_seconds`.

    Called when a worker starts (`manage.py resume_jobs`, run by `make run` and by the worker's service before
    `db_worker`), so a restart picks up where the killed worker stopped; each job resumes as the person who
    started it, whose permissions are checked again (a refusal is recorded and the job left as it is). The new
    run skips the tasks already done, so nothing is proposed twice.
    """
    silent_since = timezone.now() - timedelta(seconds=conf.stale_seconds())
    abandoned = Job.objects.filter(state=JobState.RUNNING).filter(
        Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
    )
    resumed: list[Job] = []
    for job in abandoned.select_related("project", "model", "started_by").order_by("pk"):
        try:
            with transaction.atomic(), audit_context(_worker_context(job)):
                resumed.append(enqueue_job(actions.resume_job(job.started_by, job=job)))
        except AccessDenied as refused:
            refused.record()
        except actions.InferenceError:
            continue  # the model may no longer see the data, or the job changed meanwhile: left as it is
    return resumed


@task()
def run_prelabel_job(job_id: int) -> dict[str, int | str]:
    """The worker's entry point: run (or resume) one job; returns its final counts."""
    job = execute_job(job_id)
    return {"state": job.state, "done": job.done, "total": job.total, "proposals": job.proposals}


def _claim(job_id: int) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update().select_related("model", "project", "started_by").get(pk=job_id)
        if job.state == JobState.CANCELLING:
            _finish(job, JobState.CANCELLED)
            return None
        if job.state != JobState.QUEUED:
            return None  # finished, or another worker has it
        now = timezone.now()
        Job.objects.filter(pk=job.pk).update(
            state=JobState.RUNNING, runs=F("runs") + 1, started_at=now, heartbeat_at=now, run_started_done=F("done")
        )
        job.refresh_from_db()
        record(
            action="model.use",
            object_type="model",
            object_id=job.model_id,
            label=job.project.access_label().banner(),
            details={"job": job.pk, "project": job.project_id, "model": job.model.ref, "run": job.runs},
        )
    return job


def _finish(job: Job, state: str, error: str = "") -> None:
    now = timezone.now()
    running = job.state in (JobState.RUNNING, JobState.CANCELLING) and job.started_at is not None
    busy = (now - job.started_at).total_seconds() if running and job.started_at else 0.0
    Job.objects.filter(pk=job.pk).update(
        state=state, finished_at=now, heartbeat_at=now, error=error[:500], busy_seconds=F("busy_seconds") + busy
    )
    job.refresh_from_db()
    record(
        action=f"prelabel.job.{state}",
        object_type=actions.JOB,
        object_id=job.pk,
        label=job.project.access_label().banner(),
        details={"done": job.done, "total": job.total, "proposals": job.proposals, "error": error[:500]},
    )


def _worker_context(job: Job) -> AuditContext:
    user = job.started_by
    return AuditContext(component="worker", actor=user.get_username(), roles=list(user.roles))


@dataclass(frozen=True)
class _Image:
    task: Task
    prepared: Prepared


def _read_and_prepare(task: Task, key: DataKey, manifest_input: InputSpec) -> _Image:
    item = task.item
    data = blobs.read(
        key=key,
        identity=identity(item.dataset, item.uid, "image"),
        blob_id=item.image_blob,
        expected_sha256=item.sha256,
    )
    return _Image(task, preprocess(data, manifest_input))


def _pending(job: Job) -> list[Task]:
    done = JobTask.objects.filter(job=job).values("task_id")
    return list(
        Task.objects.filter(project=job.project, state=TaskState.NEW)
        .exclude(pk__in=done)
        .select_related("item__dataset")
        .order_by("id")
    )


def _images(tasks: list[Task], manifest_input: InputSpec) -> Iterator[_Image]:
    """The tasks' images, decrypted and preprocessed ahead on a thread pool while the caller infers."""
    keys: dict[int, DataKey] = {}
    for t in tasks:
        if t.item.dataset_id not in keys:
            keys[t.item.dataset_id] = data_key_of(t.item.dataset)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="prelabel") as pool:
        queue: list[Future[_Image]] = []
        upcoming = iter(tasks)
        for t in upcoming:
            queue.append(pool.submit(_read_and_prepare, t, keys[t.item.dataset_id], manifest_input))
            if len(queue) >= PREFETCH:
                break
        while queue:
            image = queue.pop(0).result()
            nxt = next(upcoming, None)
            if nxt is not None:
                queue.append(pool.submit(_read_and_prepare, nxt, keys[nxt.item.dataset_id], manifest_input))
            yield image


def _batches(images: Iterator[_Image], size: int) -> Iterator[list[_Image]]:
    """Consecutive images of one input shape, at most `size` at a time."""
    batch: list[_Image] = []
    for image in images:
        if batch and (len(batch) >= size or batch[0].prepared.tensor.shape != image.prepared.tensor.shape):
            yield batch
            batch = []
        batch.append(image)
    if batch:
        yield batch


def _still_allowed(job: Job) -> str:
    """Why the job may no longer run, or "" (access can be withdrawn, and models retired, while it waits)."""
    if not decide(job.started_by, actions.RUN, job.project):
        return f"{job.started_by.get_username()} may no longer run pre-labeling on this project"
    if job.model.state != "active":
        return f"model {job.model.ref} was retired"
    if not actions.may_run_on(job.model, job.project):
        return f"model {job.model.ref} may not see this project's data"
    return ""


def execute_job(job_id: int, *, progress: Progress | None = None) -> Job:
    """Run the job to its end (done, cancelled or failed) in this process; safe to call again after a kill."""
    claimed = _claim(job_id)
    if claimed is None:
        return Job.objects.get(pk=job_id)
    job = claimed
    with audit_context(_worker_context(job)):
        reason = _still_allowed(job)
        if reason:
            _finish(job, JobState.FAILED, reason)
            return job
        try:
            loaded = runtime.load(job.model)
            Job.objects.filter(pk=job.pk).update(provider=loaded.provider)
            spec = loaded.manifest.input
            size = conf.batch_size() if spec.dynamic_batch else 1
            for batch in _batches(_images(_pending(job), spec), size):
                outputs = loaded.run(_stack(batch))
                found = decode(loaded.manifest, outputs, [image.prepared.transform for image in batch])
                for image, proposals in zip(batch, found, strict=True):
                    actions.store_proposals(job=job, task=image.task, proposals=proposals)
                job.refresh_from_db()
                if progress is not None:
                    progress(job)
                if job.state == JobState.CANCELLING:
                    _finish(job, JobState.CANCELLED)
                    return job
            _finish(job, JobState.DONE)
        except Exception as exc:
            job.refresh_from_db()
            _finish(job, JobState.FAILED, f"{type(exc).__name__}: {exc}")
            raise
    if progress is not None:
        progress(job)
    return job


def _stack(batch: list[_Image]) -> np.ndarray:
    return np.stack([image.prepared.tensor for image in batch])


def wait(job: Job, *, progress: Progress, poll_seconds: float = 1.0, timeout: float | None = None) -> Job:
    """Poll a job run by a worker until it finishes, reporting each change (the CLI's --background)."""
    started = time.monotonic()
    seen: tuple[str, int] | None = None
    while True:
        job.refresh_from_db()
        if (job.state, job.done) != seen:
            seen = (job.state, job.done)
            progress(job)
        if job.finished or (timeout is not None and time.monotonic() - started > timeout):
            return job
        time.sleep(poll_seconds)
