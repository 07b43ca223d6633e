"""Assignment: tasks go to one chosen person or round-robin among those who may label them, through the page and
the API; the queue gives an analyst their own tasks first, then unassigned ones, never someone else's; progress
counts per state and per analyst.

STIG: V-222425 (enforce approved authorizations), V-222426 (need-to-know), V-222427 (only authorized changes).
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import Client

from appliance.access.denial import AccessDenied
from appliance.labeling.actions import (
    LabelingError,
    TaskConflict,
    assign_tasks,
    create_tasks,
    labelers_of,
    next_task,
    save_annotations,
)
from appliance.labeling.models import Annotation, Task, TaskState
from appliance.labeling.selectors import progress_of
from tests.conftest import sign_in
from tests.labeling.conftest import Crew, box, denials, import_images, post, records, tasks_of


def _more_tasks(crew: Crew, count: int) -> list[Task]:
    import_images(crew.dataset, crew.owner, list(range(100, 100 + count)))
    create_tasks(crew.owner, project=crew.project)
    return tasks_of(crew)


def test_labelers_are_the_members_the_policy_lets_label(crew: Crew) -> None:
    # Not the manager (no annotation.edit), not the under-cleared; the one outside the dataset is a labeler of
    # the project but is dealt no task of that dataset (below).
    assert [u.username for u in labelers_of(crew.project)] == ["ana", "bob", "halfway", "rev"]


def test_round_robin_deals_every_unassigned_task_evenly_to_those_who_can_open_it(crew: Crew) -> None:
    tasks = _more_tasks(crew, 8)  # 11 tasks
    given = assign_tasks(crew.owner, project=crew.project, task_ids=None, assignees=[], round_robin=True)
    assert given["halfway"] == []  # not a member of the dataset: could never open them
    dealt = {name: len(pks) for name, pks in given.items() if pks}
    assert dealt == {"ana": 4, "bob": 4, "rev": 3}
    assert sorted(pk for pks in given.values() for pk in pks) == [t.pk for t in tasks]
    # In turn: each consecutive task to the next person.
    order = {pk: name for name, pks in given.items() for pk in pks}
    assert [order[t.pk] for t in tasks[:6]] == ["ana", "bob", "rev", "ana", "bob", "rev"]
    stored = Counter(Task.objects.filter(project=crew.project).values_list("assignee__username", flat=True))
    assert stored == Counter({"ana": 4, "bob": 4, "rev": 3})
    [entry] = records("project.tasks.assign")
    assert entry["details"]["assigned"] == {name: pks for name, pks in given.items() if pks}
    assert entry["details"]["round_robin"] is True
    assert entry["label"] == "SECRET//ALPHA"


def test_round_robin_among_chosen_people_and_only_unassigned_tasks(crew: Crew) -> None:
    tasks = _more_tasks(crew, 3)  # 6 tasks
    Task.objects.filter(pk=tasks[0].pk).update(assignee=crew.reviewer)
    given = assign_tasks(
        crew.owner, project=crew.project, task_ids=None, assignees=[crew.second, crew.analyst], round_robin=True
    )
    assert given == {"bob": [tasks[1].pk, tasks[3].pk, tasks[5].pk], "ana": [tasks[2].pk, tasks[4].pk]}
    assert Task.objects.get(pk=tasks[0].pk).assignee == crew.reviewer  # already assigned: left alone


def test_selected_tasks_go_to_the_one_person_named(crew: Crew) -> None:
    first, _, third = tasks_of(crew)
    given = assign_tasks(
        crew.owner, project=crew.project, task_ids=[third.pk, first.pk], assignees=[crew.second], round_robin=False
    )
    assert given == {"bob": [third.pk, first.pk]}
    assert [t.assignee_id for t in tasks_of(crew)] == [crew.second.pk, None, crew.second.pk]


REFUSALS = [
    pytest.param({"assignees": [], "round_robin": False}, "assignees", id="nobody-named"),
    pytest.param({"assignees": ["analyst", "second"], "round_robin": False}, "assignees", id="two-without-round-robin"),
    pytest.param({"assignees": ["low_clearance"], "round_robin": False}, "assignees", id="under-cleared"),
    pytest.param({"assignees": ["owner"], "round_robin": False}, "assignees", id="may-not-label"),
    pytest.param({"assignees": ["not_member"], "round_robin": True}, "assignees", id="not-a-member"),
    pytest.param({"assignees": ["not_dataset_member"], "round_robin": False}, "assignees", id="cannot-open-the-task"),
    pytest.param({"task_ids": [], "assignees": ["analyst"], "round_robin": False}, "task_ids", id="no-task-chosen"),
    pytest.param({"task_ids": [10**6], "assignees": ["analyst"], "round_robin": False}, "task_ids", id="unknown-task"),
]


@pytest.mark.parametrize(("given", "field"), REFUSALS)
def test_refused_assignments_name_the_field_and_change_nothing(crew: Crew, given: dict, field: str) -> None:
    people = [getattr(crew, name) for name in given["assignees"]]
    before = [(t.assignee_id, t.version) for t in tasks_of(crew)]
    with pytest.raises(LabelingError) as caught:
        assign_tasks(
            crew.owner,
            project=crew.project,
            task_ids=given.get("task_ids"),
            assignees=people,
            round_robin=given["round_robin"],
        )
    assert caught.value.field == field
    assert [(t.assignee_id, t.version) for t in tasks_of(crew)] == before
    assert records("project.tasks.assign") == []


def test_a_task_handed_in_cannot_be_reassigned(crew: Crew) -> None:
    first = tasks_of(crew)[0]
    Task.objects.filter(pk=first.pk).update(state=TaskState.SUBMITTED, assignee=crew.analyst)
    with pytest.raises(TaskConflict):
        assign_tasks(crew.owner, project=crew.project, task_ids=[first.pk], assignees=[crew.second], round_robin=False)
    assert Task.objects.get(pk=first.pk).assignee == crew.analyst


def test_when_everything_is_assigned_there_is_nothing_to_deal(crew: Crew) -> None:
    Task.objects.filter(project=crew.project).update(assignee=crew.analyst)
    with pytest.raises(LabelingError, match="already assigned"):
        assign_tasks(crew.owner, project=crew.project, task_ids=None, assignees=[], round_robin=True)


def test_analysts_may_not_assign(crew: Crew) -> None:
    with pytest.raises(AccessDenied):
        assign_tasks(crew.analyst, project=crew.project, task_ids=None, assignees=[crew.analyst], round_robin=False)
    assert denials()[-1]["details"] == {"permission": "project.manage", "gate": "role"}
    assert not Task.objects.filter(assignee__isnull=False).exists()


# --- the queue honours assignment -----------------------------------------------------------------------------


def test_the_queue_gives_ones_own_assigned_tasks_first_then_unassigned_never_someone_elses(crew: Crew) -> None:
    first, second, third = tasks_of(crew)
    assign_tasks(crew.owner, project=crew.project, task_ids=[third.pk], assignees=[crew.analyst], round_robin=False)
    assign_tasks(crew.owner, project=crew.project, task_ids=[first.pk], assignees=[crew.second], round_robin=False)
    mine = next_task(crew.analyst, project=crew.project)
    assert mine is not None
    assert mine.pk == third.pk  # assigned to ana, though task 1 and 2 come first by id
    theirs = next_task(crew.second, project=crew.project)
    assert theirs is not None
    assert theirs.pk == first.pk
    reviewer = next_task(crew.reviewer, project=crew.project)
    assert reviewer is not None
    assert reviewer.pk == second.pk  # the only unassigned one
    Task.objects.filter(pk=third.pk).update(state=TaskState.SUBMITTED, lock_holder=None, locked_until=None)
    # ana's own work is done and the rest belongs to others: nothing, rather than bob's or rev's task.
    assert next_task(crew.analyst, project=crew.project) is None


def test_an_assigned_task_is_never_handed_to_someone_else_even_when_free(crew: Crew) -> None:
    assign_tasks(crew.owner, project=crew.project, task_ids=None, assignees=[crew.analyst], round_robin=False)
    assert next_task(crew.second, project=crew.project) is None
    assert next_task(crew.analyst, project=crew.project) is not None


def test_reassigning_a_task_in_progress_releases_it_and_the_old_holder_can_no_longer_save(
    client: Client, crew: Crew
) -> None:
    held = next_task(crew.analyst, project=crew.project)
    assert held is not None
    assign_tasks(crew.owner, project=crew.project, task_ids=[held.pk], assignees=[crew.second], round_robin=False)
    moved = Task.objects.get(pk=held.pk)
    assert (moved.assignee, moved.lock_holder, moved.locked_until) == (crew.second, None, None)
    assert moved.version == held.version + 1
    sign_in(client, crew.analyst)
    url = f"/api/projects/{crew.project.pk}/tasks/{held.pk}/annotations"
    stale = post(client, url, {"task_version": held.version, "changes": [box()]})
    assert stale.status_code == 409
    assert "assigned to someone else" in stale.json()["task"][0]
    # Reloading does not help: the task is no longer the old holder's to change.
    current = post(client, url, {"task_version": moved.version, "changes": [box()]})
    assert current.status_code == 409
    assert not Annotation.objects.filter(task=moved).exists()
    handed = next_task(crew.second, project=crew.project)
    assert handed is not None
    assert handed.pk == held.pk


# --- progress -------------------------------------------------------------------------------------------------


def test_progress_counts_tasks_per_state_and_per_analyst(crew: Crew) -> None:
    tasks = _more_tasks(crew, 3)  # 6 tasks
    assign_tasks(
        crew.owner,
        project=crew.project,
        task_ids=[t.pk for t in tasks[:4]],
        assignees=[crew.analyst, crew.second],
        round_robin=True,
    )
    ana_task = next_task(crew.analyst, project=crew.project)
    assert ana_task is not None
    save_annotations(crew.analyst, task=ana_task, changes=[box()], task_version=ana_task.version)
    Task.objects.filter(pk=tasks[2].pk).update(state=TaskState.ACCEPTED)
    Task.objects.filter(pk=tasks[3].pk).update(state=TaskState.REJECTED)
    progress = progress_of(crew.project, labelers=["ana", "bob", "rev"])
    assert progress.counts == {"new": 3, "in_progress": 1, "submitted": 0, "accepted": 1, "rejected": 1}
    assert progress.total == 6
    assert progress.unassigned == 2
    rows = {a.username: (a.assigned, a.counts) for a in progress.analysts}
    assert rows == {
        "ana": (2, {"new": 0, "in_progress": 1, "submitted": 0, "accepted": 1, "rejected": 0}),
        "bob": (2, {"new": 1, "in_progress": 0, "submitted": 0, "accepted": 0, "rejected": 1}),
        "rev": (0, {"new": 0, "in_progress": 0, "submitted": 0, "accepted": 0, "rejected": 0}),
    }


# --- the page and the API -------------------------------------------------------------------------------------


def test_the_assign_page_deals_round_robin_and_shows_the_result(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    url = f"/projects/{crew.project.pk}/assign"
    page = client.get(url).content.decode()
    assert "Every unassigned task (3)" in page
    assert 'value="ana"' in page
    assert 'value="owner"' not in page
    response = client.post(url, {"scope": "unassigned", "mode": "round_robin", "people": ["ana", "bob"]})
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{crew.project.pk}/"
    detail = client.get(response["Location"]).content.decode()
    assert "Assigned 3 task(s): ana 2, bob 1." in detail
    assert [t.assignee.username for t in tasks_of(crew) if t.assignee] == ["ana", "bob", "ana"]


def test_the_assign_page_gives_ticked_tasks_to_one_person(client: Client, crew: Crew) -> None:
    first, second, _ = tasks_of(crew)
    sign_in(client, crew.owner)
    url = f"/projects/{crew.project.pk}/assign"
    data = {"scope": "selected", "mode": "one", "people": ["rev"], "tasks": [str(first.pk), str(second.pk)]}
    assert client.post(url, data).status_code == 302
    assert [t.assignee_id for t in tasks_of(crew)] == [crew.reviewer.pk, crew.reviewer.pk, None]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scope": "selected", "mode": "one", "people": ["rev"]}, "choose at least one task"),
        ({"scope": "unassigned", "mode": "one", "people": ["rev", "ana"]}, "name exactly one person"),
        ({"scope": "unassigned", "mode": "one", "people": ["low"]}, "low may not label this project"),
        ({"scope": "selected", "mode": "one", "people": ["rev"], "tasks": ["x"]}, "not task numbers"),
    ],
)
def test_the_assign_page_shows_why_it_refused(client: Client, crew: Crew, data: dict, message: str) -> None:
    sign_in(client, crew.owner)
    response = client.post(f"/projects/{crew.project.pk}/assign", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Task.objects.filter(assignee__isnull=False).exists()


def test_the_api_assigns_and_reports_progress(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    base = f"/api/projects/{crew.project.pk}"
    response = post(client, f"{base}/assign", {"round_robin": True, "assignees": ["bob", "ana"]})
    assert response.status_code == 200, response.content
    ids = [t.pk for t in tasks_of(crew)]
    assert response.json() == {"assigned": {"bob": [ids[0], ids[2]], "ana": [ids[1]]}}
    progress = client.get(f"{base}/progress").json()
    assert progress["counts"] == {"new": 3, "in_progress": 0, "submitted": 0, "accepted": 0, "rejected": 0}
    assert progress["unassigned"] == 0
    assert {a["username"]: a["assigned"] for a in progress["analysts"]} == {"ana": 1, "bob": 2, "halfway": 0, "rev": 0}
    assert post(client, f"{base}/assign", {"assignees": ["ghost"]}).json() == {
        "assignees": ["there is no user 'ghost'"]
    }
    submitted = Task.objects.filter(pk=ids[0])
    submitted.update(state=TaskState.SUBMITTED)
    conflict = post(client, f"{base}/assign", {"task_ids": [ids[0]], "assignees": ["ana"]})
    assert conflict.status_code == 409


def test_the_api_hides_assignment_and_progress_from_analysts(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    base = f"/api/projects/{crew.project.pk}"
    assert post(client, f"{base}/assign", {"round_robin": True}).status_code == 404
    assert client.get(f"{base}/progress").status_code == 404
    assert [d["details"]["gate"] for d in denials()] == ["role", "role"]
    assert not Task.objects.filter(assignee__isnull=False).exists()
