"""The inference pages and the registry API: who sees what (allowed / denied / hidden), and what the pages show."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from appliance.inference import actions
from appliance.inference.jobs import execute_job
from appliance.inference.models import Job, JobState
from tests.conftest import sign_in
from tests.datasets.conftest import person
from tests.inference.conftest import Packaged, Site, build_site, post, records


@pytest.fixture
def site(db, packaged: Packaged) -> Site:
    return build_site(packaged, count=1)


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    sign_in(client, user)
    return client


def test_the_registry_is_shown_to_admins_and_managers_only(site: Site) -> None:
    for user in (site.admin, site.manager):
        page = _client(user).get("/models/")
        assert page.status_code == 200
        assert b"layout-cdla@1.2.1" in page.content
        assert b"SECRET//ALPHA" in page.content
        listed = _client(user).get("/api/models/").json()["results"]
        assert {m["ref"] for m in listed} == {"layout-cdla@1.2.1", "text-det-ppocrv4@1.4.4"}
    assert _client(site.analyst).get("/models/").status_code == 404
    assert _client(site.analyst).get("/api/models/").status_code == 404
    assert _client(site.analyst).get(f"/models/{site.layout.pk}/").status_code == 404
    assert records("access.denied")[-1]["details"]["gate"] == "role"


def test_the_model_page_counts_only_projects_the_reader_manages(site: Site) -> None:
    actions.start_job(site.manager, project=site.project, model=site.layout)
    execute_job(Job.objects.get().pk)
    mine = _client(site.manager).get(f"/api/models/{site.layout.pk}").json()["quality"]["total"]
    assert mine["proposed"] > 0
    # The admin manages the registry but no project: the model, and no counts from data they may not see.
    theirs = _client(site.admin).get(f"/api/models/{site.layout.pk}").json()["quality"]["total"]
    assert theirs["proposed"] == 0
    page = _client(site.manager).get(f"/models/{site.layout.pk}/")
    assert page.status_code == 200
    assert b'data-class="all"' in page.content
    assert page.context["banner"]()["text"] == "SECRET//ALPHA"


def test_only_an_admin_may_retire_a_model_and_it_then_cannot_run(site: Site) -> None:
    url = f"/api/models/{site.layout.pk}/retire"
    assert post(_client(site.manager), url, {"reason": "old"}).status_code == 404
    assert post(_client(site.admin), url, {}).status_code == 400
    retired = post(_client(site.admin), url, {"reason": "superseded"})
    assert retired.json()["state"] == "retired"
    assert post(_client(site.admin), url, {"reason": "again"}).status_code == 409
    started = post(_client(site.manager), f"/api/models/projects/{site.project.pk}/jobs", {"model": site.layout.pk})
    assert started.status_code == 400
    assert "retired" in started.json()["model"][0]


def test_the_project_page_starts_and_lists_jobs_for_its_manager(site: Site) -> None:
    manager = _client(site.manager)
    url = f"/models/projects/{site.project.pk}/prelabel"
    page = manager.get(url)
    assert page.status_code == 200
    assert b"layout-cdla@1.2.1" in page.content
    assert b"<script" not in page.content  # strict CSP: nothing inline, nothing needed
    started = manager.post(url, {"model": site.layout.pk})
    assert started.status_code == 302
    job = Job.objects.get()
    assert job.state == JobState.QUEUED
    page = manager.get(url)
    assert f'data-job="{job.pk}"'.encode() in page.content
    assert b'http-equiv="refresh"' in page.content  # follows a running job without script
    cancelled = manager.post(f"/models/jobs/{job.pk}/cancel")
    assert cancelled.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert manager.post(url, {"min_confidence": "0.8"}).status_code == 302
    assert actions.min_confidence_of(site.project) == 0.8
    assert _client(site.analyst).get(url).status_code == 404
    outsider = person("other", "manager", "SECRET", ["ALPHA"])
    assert _client(outsider).get(url).status_code == 404


def test_a_job_whose_worker_still_reports_cannot_be_resumed(site: Site, settings) -> None:
    job = actions.start_job(site.manager, project=site.project, model=site.layout)
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, heartbeat_at=timezone.now())
    settings.INFERENCE_STALE_SECONDS = 120
    with pytest.raises(actions.JobConflict, match="still reporting"):
        actions.resume_job(site.manager, job=job)
    settings.INFERENCE_STALE_SECONDS = 0
    assert actions.resume_job(site.manager, job=job).state == JobState.QUEUED
    assert records("prelabel.job.resume")[-1]["details"]["from"] == "running"
