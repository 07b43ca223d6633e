"""The batch save: all changes validated, then applied atomically; each change a revision, the batch one audit
record; bad input is a clear 4xx naming the field and stores nothing; a stale version is a 409 with the current
state, never a silent overwrite.

STIG: V-222606 (validate all input), V-222474 (who changed what, when).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from appliance.labeling.actions import LabelingError, StaleVersion, next_task, save_annotations
from appliance.labeling.models import Annotation, AnnotationRevision, Task
from tests.conftest import sign_in
from tests.labeling.conftest import Crew, box, denials, post, records


@pytest.fixture
def task(crew: Crew) -> Task:
    handed = next_task(crew.analyst, project=crew.project)
    assert handed is not None
    return handed


def _url(crew: Crew, task: Task) -> str:
    return f"/api/projects/{crew.project.pk}/tasks/{task.pk}/annotations"


def _save(client: Client, crew: Crew, task: Task, changes: list[dict[str, Any]], version: int | None = None) -> Any:
    body = {"task_version": task.version if version is None else version, "changes": changes}
    return post(client, _url(crew, task), body)


def test_a_batch_creates_annotations_with_revisions_and_one_audit_record(
    client: Client, crew: Crew, task: Task
) -> None:
    sign_in(client, crew.analyst)
    changes = [
        box(attributes={"moored": True, "type": "cargo", "length": 120.5, "note": "rusty"}),
        {"op": "create", "kind": "polygon", "geometry": [[1, 1], [30, 1], [30, 30]], "class_name": "building"},
        {"op": "create", "kind": "tag", "geometry": None, "class_name": "building"},
        box(source="model", model_ref="detector-v3", confidence=0.87),
    ]
    response = _save(client, crew, task, changes)
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["created"]) == 4
    assert [a["version"] for a in body["annotations"]] == [1, 1, 1, 1]
    assert body["annotations"][3]["source"] == "model"
    assert body["task"]["version"] == task.version + 1
    assert AnnotationRevision.objects.filter(before__isnull=True, annotation__task=task).count() == 4
    [entry] = records("annotation.save")
    assert entry["details"]["counts"] == {"created": 4, "updated": 0, "deleted": 0}
    assert entry["label"] == "SECRET//ALPHA"
    assert entry["actor"] == "ana"


def test_updates_and_deletes_carry_the_version_they_edited(crew: Crew, task: Task) -> None:
    first = save_annotations(crew.analyst, task=task, changes=[box(), box(x=40)], task_version=task.version)
    one, two = first.created
    second = save_annotations(
        crew.analyst,
        task=first.task,
        changes=[
            {"op": "update", "id": one.pk, "version": 1, "geometry": [5, 5, 5, 5], "class_name": "building"},
            {"op": "delete", "id": two.pk, "version": 1},
        ],
        task_version=first.task.version,
    )
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.version, one.class_name, one.geometry) == (2, "building", [5.0, 5.0, 5.0, 5.0])
    assert (two.version, two.deleted) == (2, True)
    assert [r.after for r in AnnotationRevision.objects.filter(annotation=two).order_by("version")][1] is None
    assert second.task.version == first.task.version + 1


BAD_CHANGES = [
    pytest.param([box(x=float("1e308"))], "changes[0].geometry[0]", id="huge-coordinate"),
    pytest.param([box(w=-3)], "changes[0].geometry[2]", id="negative-width"),
    pytest.param([box(class_name="submarine")], "changes[0].class_name", id="unknown-class"),
    pytest.param([box(attributes={"moored": "yes"})], "changes[0].attributes.moored", id="checkbox-not-bool"),
    pytest.param([box(attributes={"length": "long"})], "changes[0].attributes.length", id="number-not-number"),
    pytest.param([box(attributes={"length": 900})], "changes[0].attributes.length", id="number-above-max"),
    pytest.param([box(attributes={"type": "yacht"})], "changes[0].attributes.type", id="select-unknown-option"),
    pytest.param([box(attributes={"colour": "red"})], "changes[0].attributes", id="unknown-attribute"),
    pytest.param(
        [box(), {"op": "create", "kind": "polygon", "geometry": [[1, 1], [9, 9]], "class_name": "vessel"}],
        "changes[1].geometry",
        id="two-point-polygon",
    ),
    pytest.param([box(), {"op": "move"}], "changes[1].op", id="unknown-op"),
    pytest.param([{"op": "update", "id": 10**9, "version": 1}], "changes[0].id", id="unknown-annotation"),
    pytest.param([box(source="model")], "changes[0].model_ref", id="model-without-ref"),
    pytest.param([box(confidence=3)], "changes[0].confidence", id="confidence-above-1"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_CHANGES)
def test_one_bad_change_is_a_400_naming_it_and_nothing_is_stored(
    client: Client, crew: Crew, task: Task, changes: list[dict[str, Any]], field: str
) -> None:
    sign_in(client, crew.analyst)
    response = _save(client, crew, task, changes)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Annotation.objects.exists()
    assert not AnnotationRevision.objects.exists()
    assert records("annotation.save") == []
    task.refresh_from_db()
    assert task.version == 2  # the lock of `next`, nothing since


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_are_refused_before_anything_runs(
    client: Client, crew: Crew, task: Task, constant: str
) -> None:
    sign_in(client, crew.analyst)
    raw = json.dumps({"task_version": task.version, "changes": [box()]}).replace(
        "[10, 10, 20, 10]", f"[{constant}, 1, 2, 3]"
    )
    response = client.post(_url(crew, task), data=raw, content_type="application/json")
    assert response.status_code == 400
    assert not Annotation.objects.exists()


def test_non_finite_numbers_are_refused_by_the_action_as_well(crew: Crew, task: Task) -> None:
    with pytest.raises(LabelingError) as caught:
        save_annotations(crew.analyst, task=task, changes=[box(y=float("nan"))], task_version=task.version)
    assert caught.value.field == "changes[0].geometry[1]"
    assert not Annotation.objects.exists()


def test_a_body_over_the_cap_is_a_413_and_nothing_is_stored(client: Client, crew: Crew, task: Task) -> None:
    sign_in(client, crew.analyst)
    raw = json.dumps({"task_version": task.version, "changes": [box()], "padding": "x" * (10 * 1024 * 1024)})
    response = client.post(_url(crew, task), data=raw, content_type="application/json")
    assert response.status_code == 413
    assert not Annotation.objects.exists()


def test_two_clients_editing_one_annotation_the_second_gets_409_with_the_current_state(crew: Crew, task: Task) -> None:
    first = save_annotations(crew.analyst, task=task, changes=[box()], task_version=task.version)
    [annotation] = first.created
    tab_one, tab_two = Client(), Client()
    sign_in(tab_one, crew.analyst)
    sign_in(tab_two, crew.analyst)
    seen = first.task.version
    edit = {"op": "update", "id": annotation.pk, "version": 1, "class_name": "vessel"}
    ok = _save(tab_one, crew, task, [edit | {"geometry": [1, 1, 3, 3]}], version=seen)
    assert ok.status_code == 200
    stale = _save(tab_two, crew, task, [edit | {"geometry": [50, 50, 3, 3]}], version=seen)
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "stale"
    assert body["annotations"][0]["geometry"] == [1.0, 1.0, 3.0, 3.0]
    assert body["annotations"][0]["version"] == 2
    assert body["task"]["version"] == seen + 1
    annotation.refresh_from_db()
    assert annotation.geometry == [1.0, 1.0, 3.0, 3.0]
    assert len(records("annotation.save")) == 2


def test_a_stale_annotation_version_alone_is_refused(crew: Crew, task: Task) -> None:
    first = save_annotations(crew.analyst, task=task, changes=[box()], task_version=task.version)
    [annotation] = first.created
    edit = {"op": "delete", "id": annotation.pk, "version": 7}
    with pytest.raises(StaleVersion) as caught:
        save_annotations(crew.analyst, task=first.task, changes=[edit], task_version=first.task.version)
    assert [a.pk for a in caught.value.annotations] == [annotation.pk]
    annotation.refresh_from_db()
    assert not annotation.deleted


def test_a_save_by_someone_else_while_the_task_is_locked_is_a_409(client: Client, crew: Crew, task: Task) -> None:
    sign_in(client, crew.second)
    response = _save(client, crew, task, [box()])
    assert response.status_code == 409
    assert "someone else" in json.dumps(response.json())
    assert not Annotation.objects.exists()


def test_a_save_against_a_task_the_user_cannot_see_is_a_404(client: Client, crew: Crew, task: Task) -> None:
    sign_in(client, crew.not_dataset_member)
    assert _save(client, crew, task, [box()]).status_code == 404
    assert denials()[-1]["details"]["gate"] == "membership"
    assert not Annotation.objects.exists()


def test_a_save_reads_and_answers_only_what_it_changes_whatever_the_task_holds(
    client: Client, crew: Crew, task: Task
) -> None:
    """Dense images hold thousands of annotations: a save's cost and answer must not grow with them."""
    sign_in(client, crew.analyst)

    def one_more(version: int) -> tuple[int, Any]:
        with CaptureQueriesContext(connection) as queries:
            response = _save(client, crew, task, [box()], version=version)
        assert response.status_code == 200, response.content
        return len(queries.captured_queries), response.json()

    few_queries, body = one_more(task.version)
    assert len(body["annotations"]) == 1
    response = _save(client, crew, task, [box(x=float(n % 40)) for n in range(60)], version=body["task"]["version"])
    version = response.json()["task"]["version"]
    many_queries, body = one_more(version)
    assert len(body["annotations"]) == 1
    assert Annotation.objects.filter(task=task).count() == 62
    assert many_queries == few_queries
