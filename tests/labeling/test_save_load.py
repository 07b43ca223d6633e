"""Load: 16 clients save to three tasks for 30 s on PostgreSQL, and what is stored is exactly what was answered
200: one audit record, one task version and one revision per successful save, nothing for a refused one. Every
other answer is a 409 carrying the current state (which the client then works from, as the canvas does).

A task is one analyst's while they hold it, so the clients are sessions (windows, devices) of three analysts,
five or six each, every session working on its analyst's task: the saves race where they can in this product.
Each session is signed in on its own thread, so each has its own database connection, and the writes really
commit (`committed_db`): the row locks of the save really race. The figures depend on the machine; the test
asserts only what must hold whatever the speed.

STIG: V-222474 (who changed what, when: every change recorded), V-222606 (no silent overwrite).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import Barrier
from typing import Any

from django.db import connection
from django.db.models import Count, Max
from django.test import Client

from appliance.accounts.models import User
from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import add_member
from appliance.labeling.actions import add_project_member, next_task
from appliance.labeling.models import Annotation, AnnotationRevision, Task
from tests.conftest import needs_postgres, sign_in
from tests.datasets.conftest import person
from tests.labeling.conftest import IMAGE_SIZE, build_crew, post, tasks_of

CLIENTS = 16
SECONDS = 30.0
UPDATE_SHARE = 0.6  # of saves that edit an annotation already there (the rest create one)


@dataclass
class Tally:
    saved: int = 0
    created: int = 0
    stale: int = 0
    unexpected: list[str] = field(default_factory=list)


@dataclass
class View:
    """What one client believes a task holds: its version and each live annotation's version."""

    version: int
    annotations: dict[int, int]


def _view(body: dict[str, Any]) -> View:
    return View(version=body["task"]["version"], annotations={a["id"]: a["version"] for a in body["annotations"]})


def _change(rng: random.Random, view: View) -> dict[str, Any]:
    width, height = IMAGE_SIZE
    geometry = [rng.randint(0, width - 10), rng.randint(0, height - 10), rng.randint(1, 9), rng.randint(1, 9)]
    if view.annotations and rng.random() < UPDATE_SHARE:
        annotation_id = rng.choice(sorted(view.annotations))
        return {
            "op": "update",
            "id": annotation_id,
            "version": view.annotations[annotation_id],
            "geometry": geometry,
            "class_name": "vessel",
        }
    return {"op": "create", "kind": "box", "geometry": geometry, "class_name": "vessel", "attributes": {}}


def _client_run(user: User, project_id: int, task_ids: list[int], seed: int, start: Barrier) -> Tally:
    tally = Tally()
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix of edits, not a secret
    try:
        client = Client()
        sign_in(client, user)
        views = {pk: _view(client.get(f"/api/projects/{project_id}/tasks/{pk}").json()) for pk in task_ids}
        start.wait(timeout=60)
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            pk = rng.choice(task_ids)
            view = views[pk]
            change = _change(rng, view)
            url = f"/api/projects/{project_id}/tasks/{pk}/annotations"
            response = post(client, url, {"task_version": view.version, "changes": [change]})
            body = response.json()
            if response.status_code == 200:
                tally.saved += 1
                tally.created += change["op"] == "create"
                view.version = body["task"]["version"]
                view.annotations |= {a["id"]: a["version"] for a in body["annotations"]}
            elif response.status_code == 409 and body.get("code") == "stale" and "annotations" in body:
                tally.stale += 1
                views[pk] = _view(body)  # reload from the current state the 409 carries, as the canvas does
            else:
                tally.unexpected.append(f"{response.status_code}: {str(body)[:300]}")
    finally:
        connection.close()
    return tally


@needs_postgres()
def test_sixteen_clients_saving_for_thirty_seconds_store_exactly_the_successful_saves(committed_db: None) -> None:
    crew = build_crew()
    analysts = []
    for index in range(len(tasks_of(crew))):
        user = person(f"loader{index:02d}", "analyst", "SECRET", ["ALPHA"])
        add_member(crew.owner, dataset=crew.dataset, member=user)
        add_project_member(crew.owner, project=crew.project, member=user)
        held = next_task(user, project=crew.project)
        assert held is not None
        analysts.append((user, held.pk))
    versions_before = {task.pk: task.version for task in tasks_of(crew)}
    task_ids = list(versions_before)
    sessions = [analysts[i % len(analysts)] for i in range(CLIENTS)]
    start = Barrier(CLIENTS)

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        tallies = list(
            pool.map(
                lambda i: _client_run(sessions[i][0], crew.project.pk, [sessions[i][1]], seed=i, start=start),
                range(CLIENTS),
            )
        )

    unexpected = [line for tally in tallies for line in tally.unexpected]
    assert unexpected == []
    saved = sum(t.saved for t in tallies)
    created = sum(t.created for t in tallies)
    stale = sum(t.stale for t in tallies)
    print(f"\n{CLIENTS} clients, {SECONDS:.0f} s: {saved} saves stored, {stale} answered 409 (stale)")
    assert saved > 0
    assert stale > 0  # the clients really raced: some saves were made against a version already replaced

    # Exactly one audit record, one task version and one revision per 200, and nothing for any 409.
    assert AuditRecord.objects.filter(action="annotation.save").count() == saved
    bumps = sum(task.version - versions_before[task.pk] for task in Task.objects.filter(pk__in=task_ids))
    assert bumps == saved
    assert AnnotationRevision.objects.filter(annotation__task_id__in=task_ids).count() == saved
    assert Annotation.objects.filter(task_id__in=task_ids).count() == created
    # Each annotation's history is dense: versions 1..n, and the annotation is at its newest.
    histories = Annotation.objects.annotate(kept=Count("revisions"), newest=Max("revisions__version"))
    assert all(a.version == a.kept == a.newest for a in histories)
    savers = Counter(AuditRecord.objects.filter(action="annotation.save").values_list("actor", flat=True))
    expected: Counter[str] = Counter()
    for (user, _), tally in zip(sessions, tallies, strict=True):
        expected[user.username] += tally.saved
    assert savers == +expected
