"""The console: `manage.py prelabel` runs a job and prints its progress; `manage.py models` lists and retires."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from appliance.inference.models import Job
from appliance.labeling.models import Annotation
from tests.inference.conftest import Packaged, Site, build_site, records


@pytest.fixture
def site(db, packaged: Packaged) -> Site:
    return build_site(packaged, count=2)


def test_prelabel_prints_progress_rate_eta_and_the_provider(site: Site) -> None:
    out = io.StringIO()
    call_command("prelabel", "layout", "--model", "layout-cdla", "--as", "man", stdout=out)
    lines = out.getvalue().splitlines()
    job = Job.objects.get()
    assert lines[0].startswith(f"job {job.pk} running: 1/2 tasks")
    assert "tasks/s" in lines[0]
    assert "ETA" in lines[0]
    assert lines[-1].startswith(f"job {job.pk} done: 2/2 tasks, {job.proposals} proposals")
    assert lines[-1].endswith("on CPUExecutionProvider")
    assert Annotation.objects.filter(model_ref="layout-cdla@1.2.1").count() == job.proposals
    assert records("prelabel.job.start")[-1]["actor"] == "man"


def test_prelabel_refuses_a_user_who_may_not_run_it(site: Site) -> None:
    with pytest.raises(CommandError, match="may not do this"):
        call_command("prelabel", "layout", "--model", "layout-cdla", "--as", "ana", stdout=io.StringIO())
    assert not Job.objects.exists()
    assert records("access.denied")[-1]["details"]["permission"] == "project.manage"


def test_models_lists_and_retires_from_the_console(site: Site) -> None:
    out = io.StringIO()
    call_command("models", "list", stdout=out)
    assert "layout-cdla@1.2.1\tlayout\tpicodet\tactive\tSECRET//ALPHA\t" in out.getvalue()
    call_command("models", "retire", "layout-cdla@1.2.1", "--reason", "superseded", stdout=io.StringIO())
    site.layout.refresh_from_db()
    assert site.layout.state == "retired"
    assert records("model.retire")[-1]["actor"].startswith("os:")
    with pytest.raises(CommandError, match="no active model"):
        call_command("prelabel", "layout", "--model", "layout-cdla", "--as", "man", stdout=io.StringIO())
