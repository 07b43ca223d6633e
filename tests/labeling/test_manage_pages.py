"""The manager's project pages: the list, a new project, progress, members; who may reach each, and the audited
404 for everyone else, exactly as for datasets.

STIG: V-222425 (enforce approved authorizations), V-222426 (need-to-know), V-222427 (only authorized changes).
"""

from __future__ import annotations

import pytest
from django.test import Client

from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import create_dataset
from appliance.labeling.actions import create_tasks
from appliance.labeling.models import Project, Task, TaskState
from tests.conftest import sign_in
from tests.datasets.conftest import person
from tests.labeling.conftest import HIDDEN_PROJECT, Crew, denials, import_images, records, tasks_of

MANAGER_PAGES = ["members", "schema", "assign"]


def _url(crew: Crew, page: str = "") -> str:
    return f"/projects/{crew.project.pk}/{page}"


def test_the_list_shows_each_visible_project_with_its_tasks_per_state(client: Client, crew: Crew) -> None:
    Task.objects.filter(pk=tasks_of(crew)[0].pk).update(state=TaskState.SUBMITTED)
    sign_in(client, crew.analyst)
    response = client.get("/projects/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "harbour vessels" in page
    assert "SECRET//ALPHA" in page
    # new, in progress, submitted, accepted, rejected
    assert '<td class="num">2</td><td class="num">0</td><td class="num">1</td>' in page
    assert "New project" not in page  # analysts do not create projects


@pytest.mark.parametrize(("who", "gate"), HIDDEN_PROJECT)
def test_the_list_leaves_out_projects_the_user_may_not_see(client: Client, crew: Crew, who: str, gate: str) -> None:
    sign_in(client, getattr(crew, who))
    page = client.get("/projects/").content.decode()
    assert "harbour vessels" not in page
    assert "You are not a member of any project" in page


def test_a_manager_creates_a_project_over_a_dataset_they_manage_and_its_tasks(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    assert b"New project" in client.get("/projects/").content
    form = client.get("/projects/new").content.decode()
    assert "harbour (SECRET//ALPHA)" in form
    response = client.post(
        "/projects/new", {"name": "harbour piers", "description": "piers", "datasets": [crew.dataset.pk]}
    )
    assert response.status_code == 302
    project = Project.objects.get(name="harbour piers")
    assert response["Location"] == f"/projects/{project.pk}/schema"
    assert project.access_label().banner() == "SECRET//ALPHA"
    assert list(project.members.values_list("username", flat=True)) == ["owner"]
    assert Task.objects.filter(project=project).count() == 3
    assert records("project.create")[-1]["object"] == {"type": "project", "id": str(project.pk)}
    assert records("project.tasks.create")[-1]["details"] == {"created": 3, "total": 3}


def test_only_datasets_the_manager_manages_are_offered_and_accepted(client: Client, crew: Crew) -> None:
    other = person("other", "manager", "TOP SECRET", ["ALPHA", "BRAVO"])
    theirs = create_dataset(other, name="airfield", classification="SECRET", compartments=["BRAVO"])
    sign_in(client, crew.owner)
    assert "airfield" not in client.get("/projects/new").content.decode()
    response = client.post("/projects/new", {"name": "sneaky", "datasets": [theirs.pk]})
    assert response.status_code == 400
    assert "not one of the available choices" in response.content.decode()
    assert not Project.objects.filter(name="sneaky").exists()


def test_a_refused_project_shows_why_and_stores_nothing(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    response = client.post("/projects/new", {"name": "harbour vessels", "datasets": [crew.dataset.pk]})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert Project.objects.count() == 1


def test_analysts_cannot_reach_the_create_page_and_the_refusal_is_recorded(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    assert client.get("/projects/new").status_code == 404
    assert client.post("/projects/new", {"name": "x", "datasets": [crew.dataset.pk]}).status_code == 404
    assert [d["details"]["gate"] for d in denials()] == ["role", "role"]
    assert [d["details"]["permission"] for d in denials()] == ["project.create", "project.create"]


@pytest.mark.parametrize("page", MANAGER_PAGES)
def test_analysts_cannot_reach_the_manager_pages_of_their_own_project(client: Client, crew: Crew, page: str) -> None:
    sign_in(client, crew.analyst)
    assert client.get(_url(crew, page)).status_code == 404
    assert client.post(_url(crew, page), {}).status_code == 404
    gates = [(d["details"]["permission"], d["details"]["gate"]) for d in denials()]
    assert gates == [("project.manage", "role")] * 2
    assert Project.objects.get().version == crew.project.version  # nothing changed


@pytest.mark.parametrize("page", ["", *MANAGER_PAGES])
def test_a_manager_outside_the_project_gets_the_audited_404(client: Client, crew: Crew, page: str) -> None:
    outsider = person("elsewhere", "manager", "TOP SECRET", ["ALPHA", "BRAVO"])
    sign_in(client, outsider)
    assert client.get(_url(crew, page)).status_code == 404
    [denial] = denials()
    assert denial["details"]["gate"] == "membership"
    assert denial["object"] == {"type": "project", "id": str(crew.project.pk)}


@pytest.mark.parametrize(("who", "gate"), HIDDEN_PROJECT)
def test_a_hidden_project_answers_404_and_the_refusal_is_recorded(
    client: Client, crew: Crew, who: str, gate: str
) -> None:
    sign_in(client, getattr(crew, who))
    assert client.get(_url(crew)).status_code == 404
    assert [d["details"]["gate"] for d in denials()] == [gate]


def test_a_missing_project_looks_exactly_like_a_hidden_one(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    missing = client.get("/projects/999999/")
    sign_in(client, crew.not_member)
    hidden = client.get(_url(crew))
    assert missing.status_code == hidden.status_code == 404
    assert missing.content == hidden.content
    assert [d["details"]["gate"] for d in denials()] == ["missing", "membership"]


def test_the_project_page_shows_progress_and_links_to_labeling_and_tasks(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    response = client.get(_url(crew))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="start-labeling"' in page
    assert f'href="/projects/{crew.project.pk}/next"' in page
    for task in tasks_of(crew):
        assert f'href="/projects/{crew.project.pk}/tasks/{task.pk}/"' in page
    assert "0 of 3 task(s) accepted; 3 unassigned." in page
    assert 'data-testid="analyst-progress"' not in page  # per-analyst figures are for the project's managers
    assert "/schema" not in page
    assert b"SECRET//ALPHA" in response.content


def test_a_member_without_one_dataset_sees_neither_its_tasks_nor_its_name(client: Client, crew: Crew) -> None:
    sign_in(client, crew.not_dataset_member)
    page = client.get(_url(crew)).content.decode()
    assert "img-1.png" not in page
    assert "harbour</a>" not in page
    assert "3 unassigned" in page  # the counts are the project's, not a list of what it holds


def test_managers_see_per_analyst_progress(client: Client, crew: Crew) -> None:
    first, second, _ = tasks_of(crew)
    Task.objects.filter(pk=first.pk).update(assignee=crew.analyst, state=TaskState.ACCEPTED)
    Task.objects.filter(pk=second.pk).update(assignee=crew.analyst, state=TaskState.REJECTED)
    sign_in(client, crew.owner)
    page = client.get(_url(crew)).content.decode()
    row = page.split("<td>ana</td>", 1)[1].split("</tr>", 1)[0]
    cells = [cell.split("</td>")[0] for cell in row.split('<td class="num">')[1:]]
    assert cells == ["2", "0", "0", "0", "1", "1"]  # assigned, new, in progress, submitted, accepted, rejected
    assert "<td>bob</td>" in page  # a labeler with nothing yet has a row of zeros
    assert "<td>owner</td>" not in page  # the manager may not label, so is no analyst
    assert "1 of 3 task(s) accepted; 1 unassigned." in page


def test_the_members_page_adds_a_member_and_names_a_missing_user(client: Client, crew: Crew) -> None:
    newcomer = person("newcomer", "analyst", "SECRET", ["ALPHA"])
    sign_in(client, crew.owner)
    page = client.get(_url(crew, "members")).content.decode()
    assert "<td>ana</td>" in page
    assert client.post(_url(crew, "members"), {"username": "newcomer"}).status_code == 302
    assert crew.project.members.filter(pk=newcomer.pk).exists()
    assert records("project.member.add")[-1]["details"]["member"] == "newcomer"
    unknown = client.post(_url(crew, "members"), {"username": "nobody"})
    assert unknown.status_code == 400
    assert "there is no user &#x27;nobody&#x27;" in unknown.content.decode()
    again = client.post(_url(crew, "members"), {"username": "newcomer"})
    assert again.status_code == 400
    assert "already a member" in again.content.decode()


def test_the_site_navigation_links_to_the_projects(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    assert 'href="/projects/">Projects</a>' in client.get("/datasets/").content.decode()


def test_pages_of_tasks_are_keyset_paginated(client: Client, crew: Crew) -> None:
    import_images(crew.dataset, crew.owner, list(range(10, 60)))
    create_tasks(crew.owner, project=crew.project)
    sign_in(client, crew.owner)
    first = client.get(_url(crew)).content.decode()
    ids = [t.pk for t in tasks_of(crew)]
    assert f"?after={ids[49]}" in first
    second = client.get(_url(crew) + f"?after={ids[49]}").content.decode()
    assert f'/tasks/{ids[50]}/"' in second
    assert f'/tasks/{ids[49]}/"' not in second
    assert AuditRecord.objects.filter(action="access.denied").count() == 0
