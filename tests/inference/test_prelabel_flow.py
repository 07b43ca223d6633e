"""The acceptance flow at the API: import the signed demo models, pre-label the synthetic documents through the
database queue and the database backend's own worker (run in this process, inside the test's transaction), see
the proposals as the member analyst, accept / edit / delete them, and read what became of them on the model's
page."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from appliance.datasets.models import Item
from appliance.inference.decoders.base import box_iou
from appliance.inference.models import Job, JobTask
from appliance.labeling.models import Annotation, AnnotationRevision, Task
from tests.conftest import sign_in
from tests.datasets.conftest import person
from tests.inference.conftest import Packaged, Site, build_site, import_toy, post, records


def run_worker() -> None:
    """What `manage.py db_worker --batch` does, minus its connection recycling (which would close the test's
    transaction): claim each ready task from the database queue and run it with the worker's own `run_task`."""
    worker = Worker(
        queue_names=["default"], interval=0, batch=True, backend_name="default", startup_delay=False,
        max_tasks=None, worker_id="test-worker", excluded_queue_names=[],
    )  # fmt: skip
    while True:
        with transaction.atomic():
            result = DBTaskResult.objects.ready().get_locked()
            if result is None:
                return
            result.claim(worker.worker_id)
        worker.run_task(result)


@pytest.fixture
def site(db, packaged: Packaged) -> Site:
    return build_site(packaged)


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    sign_in(client, user)
    return client


def _truth(site: Site, task: Task) -> list[tuple[str, list[float]]]:
    item = Item.objects.get(pk=task.item_id)
    doc = site.documents[item.name]
    return [(r.kind, [r.box[0], r.box[1], r.box[2] - r.box[0], r.box[3] - r.box[1]]) for r in doc.regions]


def test_pre_labeling_proposals_reach_the_analyst_and_their_fate_is_measured(site: Site) -> None:
    manager = _client(site.manager)
    started = post(manager, f"/api/models/projects/{site.project.pk}/jobs", {"model": site.layout.pk})
    assert started.status_code == 202, started.content
    job_id = started.json()["id"]
    assert started.json()["state"] == "queued"
    assert started.json()["total"] == 3

    run_worker()

    job = manager.get(f"/api/models/jobs/{job_id}").json()
    assert (job["state"], job["done"], job["total"]) == ("done", 3, 3)
    assert job["proposals"] > 0
    assert job["provider"] == "CPUExecutionProvider"  # no GPU here: the fallback is what is reported
    assert len(records("prelabel.proposals")) == 3
    assert {r["label"] for r in records("prelabel.proposals")} == {"SECRET//ALPHA"}  # outputs carry the input's label
    assert records("model.use")[-1]["details"]["model"] == "layout-cdla@1.2.1"

    # The member analyst sees the model's proposals on the tasks, and they match what was drawn on the pages.
    analyst = _client(site.analyst)
    states = []
    matched = offered = 0
    for task in Task.objects.filter(project=site.project).order_by("id"):
        state = analyst.get(f"/api/projects/{site.project.pk}/tasks/{task.pk}").json()
        proposals = [a for a in state["annotations"] if a["source"] == "model"]
        assert all(a["model_ref"] == "layout-cdla@1.2.1" and 0.5 <= a["confidence"] <= 1 for a in proposals)
        truth = _truth(site, task)
        offered += len(proposals)
        matched += sum(max(box_iou(a["geometry"], box) for _, box in truth) >= 0.5 for a in proposals)
        states.append((len(proposals), task, state, proposals))
    assert offered == job["proposals"]
    assert matched >= offered * 0.6, (matched, offered)
    _, task, state, proposals = max(states, key=lambda entry: entry[0])
    assert len(proposals) >= 3
    revision = AnnotationRevision.objects.get(annotation_id=proposals[0]["id"], version=1)
    assert revision.before is None
    assert revision.after["source"] == "model"

    # Accept one as it is, edit another, delete a third.
    accepted, edited, deleted = proposals[:3]
    x, y, w, h = edited["geometry"]
    moved = [x + w * 0.1, y, w * 0.9, h]
    changes = [
        {"op": "accept", "id": accepted["id"], "version": accepted["version"]},
        {"op": "update", "id": edited["id"], "version": edited["version"], "geometry": moved,
         "class_name": edited["class_name"], "attributes": {}},
        {"op": "delete", "id": deleted["id"], "version": deleted["version"]},
    ]  # fmt: skip
    url = f"/api/projects/{site.project.pk}/tasks/{task.pk}/annotations"
    saved = post(analyst, url, {"task_version": state["task"]["version"], "changes": changes})
    assert saved.status_code == 200, saved.content
    row = Annotation.objects.get(pk=accepted["id"])
    assert (row.source, row.model_ref, row.confidence) == ("human", "layout-cdla@1.2.1", accepted["confidence"])

    # The model page counts what became of the proposals, per class.
    quality = manager.get(f"/api/models/{site.layout.pk}").json()["quality"]
    total = quality["total"]
    assert total["accepted_unchanged"] == 1
    assert total["accepted_after_edit"] == 1
    assert total["deleted"] == 1
    assert total["proposed"] == job["proposals"]
    assert total["pending"] == job["proposals"] - 3
    assert total["mean_iou_after_edit"] == pytest.approx(0.9, abs=0.01)
    by_class = {row["class_name"]: row for row in quality["classes"]}
    assert by_class[accepted["class_name"]]["accepted_unchanged"] >= 1
    assert quality["tasks"] == 3
    assert quality["tasks_per_second"] > 0

    page = manager.get(f"/models/{site.layout.pk}/")
    assert page.status_code == 200
    assert b'data-testid="model-quality"' in page.content
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_second_run_proposes_nothing_twice(site: Site) -> None:
    manager = _client(site.manager)
    first = post(manager, f"/api/models/projects/{site.project.pk}/jobs", {"model": site.text.pk}).json()
    run_worker()
    count = Annotation.objects.filter(model_ref=site.text.ref).count()
    assert count > 0
    second = post(manager, f"/api/models/projects/{site.project.pk}/jobs", {"model": site.text.pk}).json()
    run_worker()
    assert Annotation.objects.filter(model_ref=site.text.ref).count() == count
    assert Job.objects.get(pk=second["id"]).skipped == 3
    assert JobTask.objects.filter(job_id=first["id"]).count() == 3


def test_the_project_threshold_drops_weak_proposals(site: Site) -> None:
    manager = _client(site.manager)
    url = f"/api/models/projects/{site.project.pk}/settings"
    assert manager.put(url, data='{"min_confidence": 1.5}', content_type="application/json").status_code == 400
    assert manager.put(url, data='{"min_confidence": 0.9}', content_type="application/json").status_code == 200
    post(manager, f"/api/models/projects/{site.project.pk}/jobs", {"model": site.layout.pk})
    run_worker()
    confidences = list(Annotation.objects.filter(model_ref=site.layout.ref).values_list("confidence", flat=True))
    assert confidences
    assert min(confidences) >= 0.9


def test_only_a_manager_of_the_project_may_start_see_or_cancel_jobs(site: Site) -> None:
    url = f"/api/models/projects/{site.project.pk}/jobs"
    assert post(_client(site.analyst), url, {"model": site.layout.pk}).status_code == 404  # role gate
    outsider = person("other", "manager", "SECRET", ["ALPHA"])  # not a member of the project
    assert post(_client(outsider), url, {"model": site.layout.pk}).status_code == 404
    assert records("access.denied")[-1]["details"] == {"permission": "project.manage", "gate": "membership"}
    job = post(_client(site.manager), url, {"model": site.layout.pk}).json()
    assert _client(outsider).get(f"/api/models/jobs/{job['id']}").status_code == 404
    cancelled = post(_client(site.manager), f"/api/models/jobs/{job['id']}/cancel")
    assert cancelled.json()["state"] == "cancelled"
    assert post(_client(site.manager), f"/api/models/jobs/{job['id']}/cancel").status_code == 409
    run_worker()
    assert not Annotation.objects.filter(model_ref=site.layout.ref).exists()


def test_a_model_runs_only_on_data_its_label_dominates(site: Site, packaged: Packaged) -> None:
    url = f"/api/models/projects/{site.project.pk}/jobs"
    for level, compartments in (("CONFIDENTIAL", ["ALPHA"]), ("SECRET", [])):
        toy = import_toy(
            packaged, name=f"toy-{level.lower()}-{len(compartments)}", level=level, compartments=compartments
        )
        refused = post(_client(site.manager), url, {"model": toy.pk})
        assert refused.status_code == 400
        assert "may not see this project's data" in refused.json()["model"][0]
    assert not Job.objects.exists()
