"""The analyst's queue: `next` hands out and locks one task at a time, skips what others hold, resumes one's own
task, brings rejected work back to its analyst; tasks are reached only through their project and their dataset.

STIG: V-222425 (enforce approved authorizations), V-222426 (need-to-know).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from appliance.labeling.actions import LOCK_MINUTES, next_task
from appliance.labeling.models import Task, TaskState
from tests.conftest import sign_in
from tests.labeling.conftest import HIDDEN_PROJECT, Crew, denials, post, records, tasks_of


def test_next_locks_the_first_new_task_to_the_analyst(crew: Crew) -> None:
    first = tasks_of(crew)[0]
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    assert task.pk == first.pk
    assert (task.state, task.assignee, task.lock_holder) == (TaskState.IN_PROGRESS, crew.analyst, crew.analyst)
    assert task.locked_until is not None
    assert task.locked_until - timezone.now() > timedelta(minutes=LOCK_MINUTES - 1)
    [entry] = records("task.lock")
    assert entry["object"] == {"type": "task", "id": str(task.pk)}
    assert entry["label"] == "SECRET//ALPHA"


def test_asking_again_resumes_the_same_task(crew: Crew) -> None:
    first = next_task(crew.analyst, project=crew.project)
    again = next_task(crew.analyst, project=crew.project)
    assert first is not None
    assert again is not None
    assert again.pk == first.pk


def test_two_analysts_get_different_tasks_and_the_queue_runs_dry(crew: Crew) -> None:
    handed = [next_task(user, project=crew.project) for user in (crew.analyst, crew.second, crew.reviewer)]
    assert len({task.pk for task in handed if task}) == 3
    Task.objects.filter(pk=handed[0].pk).update(state=TaskState.SUBMITTED)  # type: ignore[union-attr]
    assert next_task(crew.analyst, project=crew.project) is None  # the other two are held by their analysts


def test_an_expired_lock_of_an_unassigned_task_frees_it(crew: Crew) -> None:
    first = tasks_of(crew)[0]
    Task.objects.filter(pk=first.pk).update(lock_holder=crew.second, locked_until=timezone.now() - timedelta(1))
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    assert task.pk == first.pk


def test_a_task_locked_by_someone_else_is_skipped(crew: Crew) -> None:
    first = tasks_of(crew)[0]
    Task.objects.filter(pk=first.pk).update(lock_holder=crew.second, locked_until=timezone.now() + timedelta(minutes=5))
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    assert task.pk != first.pk


def test_the_api_answers_the_task_with_its_schema_and_404_when_empty(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    url = f"/api/projects/{crew.project.pk}/next"
    body = post(client, url, {}).json()
    assert body["task"]["state"] == "in_progress"
    assert body["task"]["image"] == {"width": 96, "height": 64, "url": body["task"]["image"]["url"]}
    assert body["schema"]["number"] == 1
    assert body["annotations"] == []
    Task.objects.exclude(pk=body["task"]["id"]).update(state=TaskState.ACCEPTED)
    Task.objects.filter(pk=body["task"]["id"]).update(state=TaskState.SUBMITTED)
    assert post(client, url, {}).status_code == 404


def test_a_manager_without_annotation_edit_gets_no_task(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    assert post(client, f"/api/projects/{crew.project.pk}/next", {}).status_code == 404
    assert denials()[-1]["details"]["gate"] == "role"


def test_a_project_member_without_the_dataset_is_handed_no_task(crew: Crew) -> None:
    assert next_task(crew.not_dataset_member, project=crew.project) is None


@pytest.mark.parametrize(("who", "gate"), HIDDEN_PROJECT)
def test_a_task_is_hidden_behind_its_project(client: Client, crew: Crew, who: str, gate: str) -> None:
    task = tasks_of(crew)[0]
    sign_in(client, getattr(crew, who))
    assert client.get(f"/api/projects/{crew.project.pk}/tasks/{task.pk}").status_code == 404
    [denial] = denials()
    assert denial["details"]["gate"] == gate


def test_a_task_is_hidden_behind_its_dataset(client: Client, crew: Crew) -> None:
    task = tasks_of(crew)[0]
    sign_in(client, crew.not_dataset_member)
    assert client.get(f"/api/projects/{crew.project.pk}").status_code == 200
    assert client.get(f"/api/projects/{crew.project.pk}/tasks/{task.pk}").status_code == 404
    [denial] = denials()
    assert denial["details"]["gate"] == "membership"
    assert denial["object"] == {"type": "task", "id": f"{crew.project.pk}/{task.pk}"}


def test_a_task_id_under_another_project_is_missing(client: Client, crew: Crew) -> None:
    task = tasks_of(crew)[0]
    sign_in(client, crew.analyst)
    assert client.get(f"/api/projects/{crew.project.pk}/tasks/{task.pk + 1000}").status_code == 404
    assert denials()[-1]["details"]["gate"] == "missing"
