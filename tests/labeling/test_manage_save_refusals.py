"""Bad input to the batch save that the acceptance lists, beyond the cases of test_save.py: numbers too large for
a float, attribute values of the wrong JSON type, degenerate polygons, and saves against a task whose project or
image the caller may not see. Each is a clear 4xx and stores nothing.

STIG: V-222606 (validate all input), V-222425/V-222426 (a hidden object answers 404, recorded).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from appliance.labeling.actions import next_task
from appliance.labeling.models import Annotation, AnnotationRevision, Task
from tests.conftest import sign_in
from tests.labeling.conftest import HIDDEN_PROJECT, Crew, box, denials, post, records


@pytest.fixture
def task(crew: Crew) -> Task:
    handed = next_task(crew.analyst, project=crew.project)
    assert handed is not None
    return handed


def _url(crew: Crew, task: Task) -> str:
    return f"/api/projects/{crew.project.pk}/tasks/{task.pk}/annotations"


def _nothing_stored(task: Task) -> None:
    assert not Annotation.objects.exists()
    assert not AnnotationRevision.objects.exists()
    assert records("annotation.save") == []
    assert Task.objects.get(pk=task.pk).version == task.version


# Python's JSON parser reads an integer literal of any size exactly; one beyond a float's range must be refused
# like infinity, not raise OverflowError (a 500).
HUGE_INTEGER = "1" + "0" * 400

RAW_NUMBERS = [
    pytest.param(HUGE_INTEGER, id="integer-beyond-float"),
    pytest.param("1e999", id="exponent-overflowing-to-infinity"),
    pytest.param("-1e400", id="negative-overflow"),
]


@pytest.mark.parametrize("number", RAW_NUMBERS)
def test_numbers_no_float_can_hold_are_a_400(client: Client, crew: Crew, task: Task, number: str) -> None:
    sign_in(client, crew.analyst)
    raw = json.dumps({"task_version": task.version, "changes": [box()]}).replace(
        "[10, 10, 20, 10]", f"[{number}, 1, 2, 3]"
    )
    response = client.post(_url(crew, task), data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    _nothing_stored(task)


def test_a_number_attribute_beyond_a_float_is_a_400(client: Client, crew: Crew, task: Task) -> None:
    sign_in(client, crew.analyst)
    body = json.dumps({"task_version": task.version, "changes": [box(attributes={"length": 7})]})
    raw = body.replace('"length": 7', f'"length": {HUGE_INTEGER}')
    response = client.post(_url(crew, task), data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    _nothing_stored(task)


def test_a_schema_bound_beyond_a_float_is_a_400(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    attribute = {"name": "size", "kind": "number", "min": 7}
    body = json.dumps({"schema": {"classes": [{"name": "a", "colour": "#000000", "attributes": [attribute]}]}})
    raw = body.replace('"min": 7', f'"min": {HUGE_INTEGER}')
    response = client.post(f"/api/projects/{crew.project.pk}/schema", data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert crew.project.schema_versions.count() == 1


WRONG_TYPES = [
    pytest.param({"note": 42}, "changes[0].attributes.note", id="text-given-a-number"),
    pytest.param({"type": ["cargo"]}, "changes[0].attributes.type", id="select-given-a-list"),
    pytest.param({"length": True}, "changes[0].attributes.length", id="number-given-a-boolean"),
    pytest.param({"length": "12"}, "changes[0].attributes.length", id="number-given-a-string"),
    pytest.param({"moored": 1}, "changes[0].attributes.moored", id="checkbox-given-a-number"),
    pytest.param(["moored"], "changes[0].attributes", id="attributes-not-an-object"),
]


@pytest.mark.parametrize(("attributes", "field"), WRONG_TYPES)
def test_attribute_values_of_the_wrong_type_are_a_400_naming_them(
    client: Client, crew: Crew, task: Task, attributes: Any, field: str
) -> None:
    sign_in(client, crew.analyst)
    response = post(client, _url(crew, task), {"task_version": task.version, "changes": [box(attributes=attributes)]})
    assert response.status_code == 400
    assert field in response.json(), response.json()
    _nothing_stored(task)


POLYGONS = [
    pytest.param([[1, 1], [9, 9], [1, 1]], id="three-points-two-distinct"),
    pytest.param([[1, 1], [9, 9], [1, 1], [9, 9]], id="four-points-two-distinct"),
    pytest.param([[1, 1], [9, 9]], id="two-points"),
    pytest.param([[1, 1], [5, 5], [9, 9]], id="collinear"),
]


@pytest.mark.parametrize("points", POLYGONS)
def test_polygons_without_three_distinct_corners_are_a_400(
    client: Client, crew: Crew, task: Task, points: list[list[int]]
) -> None:
    sign_in(client, crew.analyst)
    change = {"op": "create", "kind": "polygon", "geometry": points, "class_name": "vessel"}
    response = post(client, _url(crew, task), {"task_version": task.version, "changes": [change]})
    assert response.status_code == 400
    assert any(key.startswith("changes[0].geometry") for key in response.json()), response.json()
    _nothing_stored(task)


def test_a_body_of_ten_megabytes_of_annotations_is_a_413(client: Client, crew: Crew, task: Task) -> None:
    sign_in(client, crew.analyst)
    changes = [box()] * (10 * 1024 * 1024 // len(json.dumps(box())) + 1)
    raw = json.dumps({"task_version": task.version, "changes": changes})
    assert len(raw) > 10 * 1024 * 1024
    response = client.post(_url(crew, task), data=raw, content_type="application/json")
    assert response.status_code == 413
    _nothing_stored(task)


@pytest.mark.parametrize(("who", "gate"), HIDDEN_PROJECT)
def test_a_save_into_a_hidden_project_is_a_404_and_recorded(
    client: Client, crew: Crew, task: Task, who: str, gate: str
) -> None:
    sign_in(client, getattr(crew, who))
    response = post(client, _url(crew, task), {"task_version": task.version, "changes": [box()]})
    assert response.status_code == 404
    assert denials()[-1]["details"]["gate"] == gate
    _nothing_stored(task)


def test_a_save_under_another_project_id_is_a_404(client: Client, crew: Crew, task: Task) -> None:
    sign_in(client, crew.analyst)
    url = f"/api/projects/{crew.project.pk + 1}/tasks/{task.pk}/annotations"
    assert post(client, url, {"task_version": task.version, "changes": [box()]}).status_code == 404
    assert denials()[-1]["details"]["gate"] == "missing"
    _nothing_stored(task)
