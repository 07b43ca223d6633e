"""A labeling manager's first hour in a real browser: create a project over a dataset, write its schema (one refusal
shown and corrected), add two analysts, deal the tasks round-robin, and watch progress move when an analyst works.

Django's ORM refuses to run in the thread where Playwright's sync API holds an event loop, so the people and the
imagery are made before the browser starts, the analyst's work runs in a thread of its own, and the database is
checked after the browser closes. The pages keep their strict CSP; any console error fails the test.

STIG: V-222425/V-222426 (work only for those cleared and in need-to-know), V-222427 (each change recorded),
V-222602 (no inline script, nothing from another origin).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connection
from playwright.sync_api import ConsoleMessage, Page, Request, expect, sync_playwright

from appliance.accounts.actions import create_user
from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import add_member, create_dataset
from appliance.datasets.models import Dataset
from appliance.labeling.actions import next_task, save_annotations, submit_task
from appliance.labeling.models import Project, SchemaVersion, Task
from tests.conftest import STRONG_PASSWORD
from tests.datasets.conftest import person
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.labeling.conftest import import_images

IMAGES = 4


def _cast() -> tuple[Dataset, list[User]]:
    """A manager (signs in with a password, as an operator created them), a SECRET//ALPHA dataset of four
    images, and two cleared analysts who are members of it."""
    with audit_context(AuditContext(component="cli", actor="os:e2e")):
        manager = create_user(
            username="e2e-man",
            roles=["manager"],
            clearance="TOP SECRET",
            compartments=["ALPHA", "BRAVO"],
            password=STRONG_PASSWORD,
            by=None,
        )
    dataset = create_dataset(manager, name="harbour survey", classification="SECRET", compartments=["ALPHA"])
    import_images(dataset, manager, list(range(1, IMAGES + 1)))
    analysts = [person(name, "analyst", "SECRET", ["ALPHA"]) for name in ("ana", "bob")]
    for analyst in analysts:
        add_member(manager, dataset=dataset, member=analyst)
    return dataset, analysts


def _sign_in(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="I acknowledge").click()
    page.get_by_label("Username").fill("e2e-man")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url)


def _field(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[name="{name}"]')


def _analyst_labels_and_submits(username: str, project_id: int) -> int:
    """One analyst's work, done through the real actions in a thread of its own (no event loop there)."""
    try:
        analyst = User.objects.get(username=username)
        project = Project.objects.get(pk=project_id)
        task = next_task(analyst, project=project)
        assert task is not None
        change = {"op": "create", "kind": "box", "geometry": [4, 4, 20, 10], "class_name": "vessel"}
        saved = save_annotations(
            analyst, task=task, changes=[change | {"attributes": {"type": "cargo"}}], task_version=task.version
        )
        submit_task(analyst, task=saved.task)
        return task.pk
    finally:
        connection.close()


def _analyst_row(page: Page, username: str) -> list[str]:
    row = page.get_by_test_id("analyst-progress").locator("tr", has=page.locator(f"td:text-is('{username}')"))
    return row.locator("td").all_inner_texts()


def test_a_manager_creates_a_project_writes_its_schema_assigns_and_sees_progress(
    app_server: str, artifacts: Path
) -> None:
    dataset, _ = _cast()
    shots = {
        name: artifacts / f"manager-{name}.png"
        for name in ("create", "schema-refused", "schema", "members", "assign", "progress")
    }
    console_errors: list[str] = []
    requested: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1700})
        page = context.new_page()
        page.set_default_timeout(20_000)

        def keep_error(message: ConsoleMessage) -> None:
            # The refused publish is a 400 the browser logs; the favicon probe 404s. Anything else is a failure.
            url = message.location.get("url", "")
            expected = url.endswith("/favicon.ico") or (url.endswith("/schema") and "status of 400" in message.text)
            if message.type == "error" and not expected:
                console_errors.append(f"{message.text} ({url})")

        def keep_request(request: Request) -> None:
            requested.append(request.url)

        page.on("console", keep_error)
        page.on("request", keep_request)
        _sign_in(page, f"{app_server}/projects/")

        # No project yet; create one over the dataset the manager manages.
        expect(page.get_by_text("You are not a member of any project")).to_be_visible()
        page.get_by_role("link", name="New project").click()
        page.get_by_label("Name").fill("harbour vessels")
        page.get_by_label("Description").fill("Ships at the piers")
        page.get_by_label("harbour survey (SECRET//ALPHA)").check()
        page.screenshot(path=str(shots["create"]), full_page=True)
        page.get_by_role("button", name="Create").click()
        expect(page.locator(".messages")).to_contain_text(f"Created harbour vessels with {IMAGES} task(s).")
        expect(page.get_by_role("heading", name="Schema of harbour vessels")).to_be_visible()
        expect(page.get_by_test_id("banner-top")).to_have_text("SECRET//ALPHA")

        # The schema: a class with a select attribute, more rows, a number attribute and a second class.
        _field(page, "c0-name").fill("vessel")
        _field(page, "c0-colour").fill("#cc2200")
        _field(page, "c0-shortcut").fill("v")
        _field(page, "c0-a0-name").fill("type")
        _field(page, "c0-a0-kind").select_option("select")
        _field(page, "c0-a0-options").fill("cargo, tanker")
        page.get_by_role("button", name="More rows").click()
        expect(_field(page, "c0-a0-options")).to_have_value("cargo, tanker")
        _field(page, "c0-a1-name").fill("length")
        _field(page, "c0-a1-kind").select_option("number")
        _field(page, "c0-a1-min").fill("0")
        _field(page, "c0-a1-max").fill("400")
        _field(page, "c1-name").fill("pier")
        _field(page, "c1-shortcut").fill("v")  # the same key as vessel: refused
        page.get_by_role("button", name="Publish as version 1").click()
        errors = page.get_by_test_id("schema-errors")
        expect(errors).to_contain_text("Nothing was published")
        expect(errors).to_contain_text("shortcut 'v' is used twice")
        expect(page.locator("fieldset.invalid")).to_have_count(1)
        expect(page.locator("fieldset.invalid legend")).to_have_text("Class pier")
        expect(_field(page, "c0-a1-max")).to_have_value("400")  # nothing typed was lost
        page.screenshot(path=str(shots["schema-refused"]), full_page=True)
        _field(page, "c1-shortcut").fill("p")
        page.get_by_role("button", name="Publish as version 1").click()
        expect(page.locator(".messages")).to_contain_text("Published schema version 1 of harbour vessels.")
        expect(page.get_by_test_id("schema-versions")).to_contain_text("vessel, pier")
        expect(page.get_by_role("button", name="Publish as version 2")).to_be_visible()
        page.screenshot(path=str(shots["schema"]), full_page=True)

        # Two analysts join; both may label.
        page.get_by_role("navigation", name="Manage the project").get_by_role("link", name="Members").click()
        for username in ("ana", "bob"):
            page.get_by_label("Add a member by user name").fill(username)
            page.get_by_role("button", name="Add", exact=True).click()
            expect(page.locator(".messages")).to_contain_text(f"Added {username}.")
        members = page.get_by_test_id("member-list")
        expect(members.locator("tr", has=page.locator("td:text-is('ana')"))).to_contain_text("yes")
        expect(members.locator("tr", has=page.locator("td:text-is('e2e-man')"))).to_contain_text("no")
        page.screenshot(path=str(shots["members"]), full_page=True)

        # Deal every unassigned task round-robin among everyone who may label.
        page.get_by_role("navigation", name="Manage the project").get_by_role("link", name="Assign").click()
        expect(page.get_by_label(f"Every unassigned task ({IMAGES})")).to_be_checked()
        expect(page.get_by_test_id("labelers").locator("label")).to_have_text(["ana", "bob"])
        page.screenshot(path=str(shots["assign"]), full_page=True)
        page.get_by_role("button", name="Assign").click()
        expect(page.locator(".messages")).to_contain_text("Assigned 4 task(s): ana 2, bob 2.")
        expect(page.get_by_test_id("progress-summary")).to_have_text("0 of 4 task(s) accepted; 0 unassigned.")
        assert _analyst_row(page, "ana") == ["ana", "2", "2", "0", "0", "0", "0"]
        project_id = int(urlsplit(page.url).path.strip("/").split("/")[-1])

        # ana labels one image and hands it in; the page shows it.
        with ThreadPoolExecutor(max_workers=1) as worker:
            submitted = worker.submit(_analyst_labels_and_submits, "ana", project_id).result(timeout=60)
        page.reload()
        assert _analyst_row(page, "ana") == ["ana", "2", "1", "0", "1", "0", "0"]
        assert _analyst_row(page, "bob") == ["bob", "2", "2", "0", "0", "0", "0"]
        expect(page.get_by_test_id("state-counts").locator("td")).to_have_text(["3", "0", "1", "0", "0"])
        row = page.get_by_test_id("task-list").locator("tr", has=page.locator(f"a:text-is('#{submitted}')"))
        expect(row).to_contain_text("Submitted")
        expect(page.get_by_test_id("banner-bottom")).to_have_text("SECRET//ALPHA")
        page.screenshot(path=str(shots["progress"]), full_page=True)
        context.close()
        browser.close()

    assert not console_errors, console_errors
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(app_server))
    assert all("{0.scheme}://{0.netloc}".format(urlsplit(url)) == origin for url in requested)

    # What the pages did is what is stored, and on the record.
    project = Project.objects.get(name="harbour vessels")
    assert list(project.datasets.all()) == [dataset]
    [schema] = SchemaVersion.objects.filter(project=project)
    assert [(c["name"], c["shortcut"], c["colour"]) for c in schema.classes] == [
        ("vessel", "v", "#cc2200"),
        ("pier", "p", "#1f77b4"),
    ]
    assert schema.classes[0]["attributes"] == [
        {"name": "type", "kind": "select", "required": False, "options": ["cargo", "tanker"]},
        {"name": "length", "kind": "number", "required": False, "min": 0.0, "max": 400.0},
    ]
    owners = sorted(Task.objects.filter(project=project).values_list("assignee__username", flat=True))
    assert owners == ["ana", "ana", "bob", "bob"]
    actions = [
        action
        for action in AuditRecord.objects.order_by("seq").values_list("action", flat=True)
        if action.startswith("project.")
    ]
    assert actions == [
        "project.create",
        "project.tasks.create",
        "project.schema.publish",
        "project.member.add",
        "project.member.add",
        "project.tasks.assign",
    ]
    [assigned] = AuditRecord.objects.filter(action="project.tasks.assign")
    details = json.loads(assigned.canonical)["details"]
    assert {name: len(pks) for name, pks in details["assigned"].items()} == {"ana": 2, "bob": 2}
    assert all(path.stat().st_size > 0 for path in shots.values())
