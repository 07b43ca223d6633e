"""Annotation history: every change is a revision (who, when, before, after); any revision can be viewed and
restored, and a restore is itself a new revision, so the history never changes.

STIG: V-222474 (content of records: who, what, when), V-222606.
"""

from __future__ import annotations

import pytest
from django.test import Client

from appliance.labeling.actions import LabelingError, next_task, restore_revision, save_annotations
from appliance.labeling.models import Annotation
from tests.conftest import sign_in
from tests.labeling.conftest import Crew, box, denials, post, records


@pytest.fixture
def edited(crew: Crew) -> Annotation:
    """An annotation created (v1), moved (v2) and deleted (v3)."""
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    first = save_annotations(crew.analyst, task=task, changes=[box()], task_version=task.version)
    [annotation] = first.created
    move = {"op": "update", "id": annotation.pk, "version": 1, "geometry": [30, 30, 5, 5], "class_name": "vessel"}
    second = save_annotations(crew.analyst, task=first.task, changes=[move], task_version=first.task.version)
    remove = {"op": "delete", "id": annotation.pk, "version": 2}
    save_annotations(crew.analyst, task=second.task, changes=[remove], task_version=second.task.version)
    annotation.refresh_from_db()
    return annotation


def _base(crew: Crew, annotation: Annotation) -> str:
    return f"/api/projects/{crew.project.pk}/tasks/{annotation.task_id}/annotations/{annotation.pk}"


def test_every_change_is_a_revision_with_before_and_after(client: Client, crew: Crew, edited: Annotation) -> None:
    sign_in(client, crew.analyst)
    history = client.get(f"{_base(crew, edited)}/revisions").json()["results"]
    assert [r["version"] for r in history] == [1, 2, 3]
    assert [r["actor"] for r in history] == ["ana"] * 3
    assert history[0]["before"] is None
    assert history[1]["before"]["geometry"] == [10.0, 10.0, 20.0, 10.0]
    assert history[1]["after"]["geometry"] == [30.0, 30.0, 5.0, 5.0]
    assert history[2]["after"] is None


def test_a_restore_brings_back_a_deleted_annotation_as_a_new_revision(
    client: Client, crew: Crew, edited: Annotation
) -> None:
    sign_in(client, crew.analyst)
    response = post(client, f"{_base(crew, edited)}/restore", {"version": 1})
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 4
    assert response.json()["geometry"] == [10.0, 10.0, 20.0, 10.0]
    edited.refresh_from_db()
    assert not edited.deleted
    [entry] = records("annotation.restore")
    assert entry["details"] == {"task": edited.task_id, "restored": 1, "version": 4}
    history = client.get(f"{_base(crew, edited)}/revisions").json()["results"]
    assert history[-1]["before"] is None  # it was deleted
    assert history[-1]["after"]["geometry"] == [10.0, 10.0, 20.0, 10.0]


def test_restoring_a_deletion_or_a_missing_version_is_refused(crew: Crew, edited: Annotation) -> None:
    for version, words in ((3, "is a deletion"), (9, "has no version")):
        with pytest.raises(LabelingError, match=words):
            restore_revision(crew.analyst, annotation=edited, version=version)
    assert edited.revisions.count() == 3


def test_history_is_hidden_from_those_who_cannot_reach_the_task(client: Client, crew: Crew, edited: Annotation) -> None:
    sign_in(client, crew.not_dataset_member)
    assert client.get(f"{_base(crew, edited)}/revisions").status_code == 404
    assert post(client, f"{_base(crew, edited)}/restore", {"version": 1}).status_code == 404
    assert [d["details"]["gate"] for d in denials()] == ["membership", "membership"]
