"""`manage.py resume_jobs`: queue again the pre-labeling jobs whose worker died, before a worker starts.

`make run` runs it before `db_worker`, and so does the worker's service (deploy/ansible, ExecStartPre): a worker
host that restarts after a crash takes its jobs up again without anyone asking. Each job resumes as the person who
started it, if they still may; tasks already done are skipped. Prints one line per job queued again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from appliance.inference.jobs import resume_abandoned


class Command(BaseCommand):
    help = "Queue again the pre-labeling jobs whose worker died (silent past inference.stale_seconds)."

    def handle(self, *args: Any, **options: Any) -> None:
        for job in resume_abandoned():
            self.stdout.write(f"job {job.pk} queued again ({job.done}/{job.total} done)")
