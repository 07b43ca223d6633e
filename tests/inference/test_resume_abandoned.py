"""Jobs whose worker died are taken up again when a worker starts (`manage.py resume_jobs`): only those silent past
`inference.stale_seconds`, each as the person who started it and only if they still may.

STIG: V-222425 (a resumed job is re-authorized as its starter).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from appliance.inference import actions
from appliance.inference.models import Job, JobState
from tests.inference.conftest import Packaged, Site, build_site, console, records


@pytest.fixture
def site(db, packaged: Packaged) -> Site:
    return build_site(packaged, count=1)


def _running(site: Site, *, silent_for: timedelta) -> Job:
    with console():
        job = actions.start_job(site.manager, project=site.project, model=site.layout)
    beat = timezone.now() - silent_for
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, started_at=beat, heartbeat_at=beat, runs=1)
    return Job.objects.get(pk=job.pk)


def test_a_silent_job_is_queued_again_and_a_live_one_is_left_alone(site: Site, capsys) -> None:
    dead = _running(site, silent_for=timedelta(minutes=10))
    alive = _running(site, silent_for=timedelta(seconds=5))
    call_command("resume_jobs")
    assert Job.objects.get(pk=dead.pk).state == JobState.QUEUED
    assert Job.objects.get(pk=alive.pk).state == JobState.RUNNING
    assert DBTaskResult.objects.filter(pk=Job.objects.get(pk=dead.pk).task_result_id).exists()
    assert f"job {dead.pk} queued again" in capsys.readouterr().out
    [entry] = records("prelabel.job.resume")
    assert (entry["object"]["id"], entry["actor"]) == (str(dead.pk), site.manager.username)


def test_a_job_whose_starter_may_no_longer_run_it_stays_as_it_was(site: Site) -> None:
    dead = _running(site, silent_for=timedelta(minutes=10))
    site.project.members.remove(site.manager)
    call_command("resume_jobs")
    assert Job.objects.get(pk=dead.pk).state == JobState.RUNNING
    assert records("prelabel.job.resume") == []
    assert records("access.denied")[-1]["details"]["permission"] == "project.manage"
