"""Projects: created over datasets the creator can see, labeled the highest of them, with a versioned schema and
one task per item; hidden from anyone lacking clearance, compartment or membership (audited 404).

STIG: V-222425 (enforce approved authorizations), V-222427 (MAC), V-222606 (input validation).
"""

from __future__ import annotations

import pytest
from django.test import Client

from appliance.datasets.actions import create_dataset
from appliance.labeling.actions import LabelingError, create_project, create_tasks, publish_schema
from appliance.labeling.models import Project, SchemaVersion, Task
from tests.conftest import sign_in
from tests.datasets.conftest import person
from tests.labeling.conftest import HIDDEN_PROJECT, SCHEMA, Crew, denials, import_images, post, records


def test_a_project_is_labeled_the_highest_of_its_datasets(crew: Crew) -> None:
    other = create_dataset(crew.owner, name="airfield", classification="TOP SECRET", compartments=["BRAVO"])
    project = create_project(crew.owner, name="both", dataset_ids=[crew.dataset.pk, other.pk])
    assert project.access_label().banner() == "TOP SECRET//ALPHA/BRAVO"
    assert list(project.members.all()) == [crew.owner]
    [entry] = [r for r in records("project.create") if r["object"]["id"] == str(project.pk)]
    assert entry["label"] == "TOP SECRET//ALPHA/BRAVO"
    assert entry["details"]["datasets"] == [crew.dataset.pk, other.pk]


def test_the_creator_must_see_every_dataset(crew: Crew) -> None:
    hidden = create_dataset(crew.owner, name="hidden", classification="SECRET", compartments=["ALPHA"])
    other_manager = person("man2", "manager", "TOP SECRET", ["ALPHA", "BRAVO"])
    with pytest.raises(LabelingError) as caught:
        create_project(other_manager, name="nosy", dataset_ids=[hidden.pk])
    assert caught.value.field == "dataset_ids"
    assert not Project.objects.filter(name="nosy").exists()
    [denial] = denials()
    assert denial["details"] == {"permission": "dataset.view", "gate": "membership"}


def test_an_analyst_may_not_create_a_project(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    response = post(client, "/api/projects/", {"name": "mine", "dataset_ids": [crew.dataset.pk]})
    assert response.status_code == 404
    assert denials()[-1]["details"]["gate"] == "role"
    assert not Project.objects.filter(name="mine").exists()


def test_the_api_creates_a_project_with_its_schema(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    body = {"name": "second", "dataset_ids": [crew.dataset.pk], "schema": SCHEMA}
    response = post(client, "/api/projects/", body)
    assert response.status_code == 201, response.content
    assert response.json()["banner"] == "SECRET//ALPHA"
    project = Project.objects.get(name="second")
    assert project.current_schema().number == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "dataset_ids": [1]}, "name"),
        ({"name": "x", "dataset_ids": []}, "dataset_ids"),
        ({"name": "x", "dataset_ids": [999]}, "dataset_ids"),
        ({"name": "x", "dataset_ids": "DATASET", "schema": {"classes": []}}, "schema.classes"),
        ({"name": "x", "dataset_ids": "DATASET", "schema": {"classes": [{"name": "a", "colour": "red"}]}},
         "schema.classes[0].colour"),
        ({"name": "harbour vessels", "dataset_ids": "DATASET"}, "name"),
    ],
)  # fmt: skip
def test_bad_project_input_is_a_400_naming_the_field(client: Client, crew: Crew, body: dict, field: str) -> None:
    if body["dataset_ids"] == "DATASET":
        body = body | {"dataset_ids": [crew.dataset.pk]}
    sign_in(client, crew.owner)
    before = Project.objects.count()
    response = post(client, "/api/projects/", body)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert Project.objects.count() == before


def test_a_schema_publish_makes_a_new_version(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    changed = {"classes": [*SCHEMA["classes"], {"name": "crane", "colour": "#0000FF", "shortcut": "c"}]}
    response = post(client, f"/api/projects/{crew.project.pk}/schema", {"schema": changed})
    assert response.status_code == 201, response.content
    assert response.json()["number"] == 2
    assert [v.number for v in SchemaVersion.objects.filter(project=crew.project)] == [1, 2]
    assert records("project.schema.publish")[-1]["details"]["number"] == 2


def test_a_schema_with_duplicate_shortcuts_is_refused(crew: Crew) -> None:
    bad = {
        "classes": [
            {"name": "a", "colour": "#000000", "shortcut": "x"},
            {"name": "b", "colour": "#000000", "shortcut": "x"},
        ]
    }
    with pytest.raises(LabelingError) as caught:
        publish_schema(crew.owner, project=crew.project, schema=bad)
    assert caught.value.field == "schema.classes[1].shortcut"


def test_creating_tasks_is_idempotent_and_covers_new_items(crew: Crew) -> None:
    assert Task.objects.filter(project=crew.project).count() == 3
    assert create_tasks(crew.owner, project=crew.project) == 0
    import_images(crew.dataset, crew.owner, [4])
    assert create_tasks(crew.owner, project=crew.project) == 1
    assert [r["details"]["created"] for r in records("project.tasks.create")] == [3, 0, 1]


def test_an_analyst_may_not_create_tasks(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    assert post(client, f"/api/projects/{crew.project.pk}/tasks", {}).status_code == 404


def test_a_member_sees_the_project(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    assert [p["name"] for p in client.get("/api/projects/").json()["results"]] == ["harbour vessels"]
    detail = client.get(f"/api/projects/{crew.project.pk}").json()
    assert detail["schema"]["number"] == 1


@pytest.mark.parametrize(("who", "gate"), HIDDEN_PROJECT)
def test_the_project_is_hidden_and_the_refusal_audited(client: Client, crew: Crew, who: str, gate: str) -> None:
    sign_in(client, getattr(crew, who))
    assert client.get("/api/projects/").json()["results"] == []
    response = client.get(f"/api/projects/{crew.project.pk}")
    assert response.status_code == 404
    [denial] = denials()
    assert denial["details"]["gate"] == gate
    assert denial["object"] == {"type": "project", "id": str(crew.project.pk)}


def test_a_missing_project_looks_like_a_hidden_one(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    assert client.get("/api/projects/99999").status_code == 404
    assert denials()[-1]["details"]["gate"] == "missing"


def test_anonymous_callers_get_401(client: Client, crew: Crew) -> None:
    assert client.get("/api/projects/").status_code in (401, 403)
