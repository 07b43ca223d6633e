"""`manage.py prelabel PROJECT --model NAME[@VERSION] --as USER`: pre-label a project's new tasks, with progress.

Runs the job in this process by default (no worker needed); `--background` queues it for `manage.py db_worker`
and follows its progress. `--resume JOB` takes up a job whose worker died (silent for `inference.stale_seconds`),
here or, with `--background`, on a worker; tasks it already finished are skipped. The acting user's permissions apply
exactly as in the browser: the command is recorded as theirs, from the console.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from appliance.access.denial import AccessDenied
from appliance.accounts.management.commands.users import console_context
from appliance.accounts.models import User
from appliance.auditlog.context import audit_context, update
from appliance.inference import actions
from appliance.inference.jobs import enqueue_job, execute_job, wait
from appliance.inference.models import Job, ModelState, RegisteredModel
from appliance.labeling.models import Project


def describe(job: Job) -> str:
    rate = job.rate()
    eta = job.eta_seconds()
    parts = [f"job {job.pk} {job.state}: {job.done}/{job.total} tasks, {job.proposals} proposals"]
    if rate:
        parts.append(f"{rate:.2f} tasks/s")
    if eta is not None:
        parts.append(f"ETA {eta} s")
    if job.provider:
        parts.append(f"on {job.provider}")
    if job.error:
        parts.append(f"error: {job.error}")
    return ", ".join(parts)


def find_model(ref: str) -> RegisteredModel:
    name, _, version = ref.partition("@")
    rows = RegisteredModel.objects.filter(name=name, state=ModelState.ACTIVE)
    if version:
        rows = rows.filter(version=version)
    row = rows.order_by("-imported_at").first()
    if row is None:
        raise CommandError(f"no active model {ref!r} (see `manage.py models list`)")
    return row


class Command(BaseCommand):
    help = "Pre-label a project's new tasks with a registered model, printing progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", nargs="?", help="project name or id")
        parser.add_argument("--model", help="NAME or NAME@VERSION")
        parser.add_argument("--as", dest="username", required=True, help="the account the job runs as")
        parser.add_argument("--min-confidence", type=float, default=None)
        parser.add_argument("--background", action="store_true", help="queue for a worker and follow it")
        parser.add_argument("--resume", type=int, default=None, metavar="JOB", help="queue a dead job again")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no account {options['username']!r}")
        with audit_context(console_context()):
            update(actor=user.get_username(), roles=list(user.roles))
            try:
                job = self._resume(user, options) if options["resume"] else self._start(user, options)
            except actions.InferenceError as exc:
                raise CommandError(str(exc)) from exc
            except AccessDenied as exc:
                exc.record()  # raised inside the refused transaction: recorded now that it has rolled back
                raise CommandError(f"{user.get_username()} may not do this (or it does not exist)") from exc
            if options["background"]:
                job = wait(job, progress=lambda j: self.stdout.write(describe(j)))
            else:
                job = execute_job(job.pk, progress=lambda j: self.stdout.write(describe(j)))
        if job.state != "done":
            raise CommandError(describe(job))

    def _start(self, user: User, options: dict[str, Any]) -> Job:
        raw, ref = options["project"], options["model"]
        if not raw or not ref:
            raise CommandError("give a PROJECT and --model (or --resume JOB)")
        project = Project.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        project = project or Project.objects.filter(name=raw).first()
        if project is None:
            raise CommandError(f"no project {raw!r}")
        model = find_model(ref)
        with transaction.atomic():
            job = actions.start_job(user, project=project, model=model, min_confidence=options["min_confidence"])
            if options["background"]:
                enqueue_job(job)
        return job

    def _resume(self, user: User, options: dict[str, Any]) -> Job:
        job = Job.objects.filter(pk=options["resume"]).select_related("project", "model").first()
        if job is None:
            raise CommandError(f"no job {options['resume']}")
        with transaction.atomic():
            job = actions.resume_job(user, job=job)
            if options["background"]:
                enqueue_job(job)
        return job
