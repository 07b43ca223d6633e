"""A manager exports a project in a real browser and watches the export's progress move without reloading, then
imports it back as a dry run; the page keeps its strict CSP (any console error fails the test).

The export's worker runs in a thread of its own after the page has loaded (Django's ORM cannot run in the thread
where Playwright's sync API holds its event loop), so the progress module is what brings the finished state on
screen.

STIG: V-222643 (the page and the export carry the project's classification), V-222602 (no inline script, nothing
from another origin).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connection
from playwright.sync_api import ConsoleMessage, Request, expect, sync_playwright

from appliance.accounts.actions import create_user
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import add_member, create_dataset
from appliance.exchange.jobs import execute_export, read_export
from appliance.exchange.models import Export
from appliance.labeling.actions import add_project_member, create_project, create_tasks, save_annotations
from appliance.labeling.models import Task
from tests.conftest import STRONG_PASSWORD
from tests.datasets.conftest import person
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.labeling.conftest import SCHEMA, import_images


def _cast() -> int:
    with audit_context(AuditContext(component="cli", actor="os:e2e")):
        manager = create_user(
            username="e2e-exporter",
            roles=["manager"],
            clearance="SECRET",
            compartments=["ALPHA"],
            password=STRONG_PASSWORD,
            by=None,
        )
    dataset = create_dataset(manager, name="harbour", classification="SECRET", compartments=["ALPHA"])
    import_images(dataset, manager, [1, 2])
    project = create_project(manager, name="harbour vessels", dataset_ids=[dataset.pk], schema=SCHEMA)
    create_tasks(manager, project=project)
    task = Task.objects.filter(project=project).order_by("id").first()
    assert task is not None
    change = {"op": "create", "kind": "box", "geometry": [4, 4, 20, 10], "class_name": "building"}
    analyst = person("e2e-analyst", "analyst", "SECRET", ["ALPHA"])
    add_member(manager, dataset=dataset, member=analyst)
    add_project_member(manager, project=project, member=analyst)
    save_annotations(analyst, task=task, changes=[change], task_version=task.version)
    return project.pk


def _run_queued_export() -> str:
    try:
        for _ in range(100):
            export = Export.objects.order_by("-id").first()
            if export is not None:
                time.sleep(1.5)  # let the page's first poll see it queued
                return execute_export(export.pk).sha256
            time.sleep(0.1)
        raise AssertionError("no export was queued")
    finally:
        connection.close()


def test_a_manager_exports_sees_it_finish_and_dry_runs_an_import(app_server: str, tmp_path: Path) -> None:
    project_id = _cast()
    console_errors: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(20_000)

        def keep_error(message: ConsoleMessage) -> None:
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
                console_errors.append(message.text)

        def keep_request(request: Request) -> None:
            if not request.url.startswith(app_server) and not request.url.startswith("data:"):
                foreign.append(request.url)

        page.on("console", keep_error)
        page.on("request", keep_request)
        url = f"{app_server}/exchange/projects/{project_id}/"
        page.goto(url)
        page.get_by_role("button", name="I acknowledge").click()
        page.get_by_label("Username").fill("e2e-exporter")
        page.get_by_label("Password").fill(STRONG_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url)
        expect(page.get_by_test_id("banner-top")).to_have_text("SECRET//ALPHA")
        page.locator("#export-format").select_option("coco")
        with ThreadPoolExecutor(max_workers=1) as worker:
            finished = worker.submit(_run_queued_export)
            page.get_by_role("button", name="Export", exact=True).click()
            expect(page.locator(".messages")).to_contain_text("is queued")
            sha256 = finished.result(timeout=60)
        # The progress module polls the API and reloads the page once the export is done.
        expect(page.get_by_test_id("exports").locator("code.digest").first).to_have_text(sha256, timeout=20_000)
        expect(page.get_by_test_id("exports").locator("[data-field=state]").first).to_have_text("done")
        context_path = tmp_path / "export.zip"
        with ThreadPoolExecutor(max_workers=1) as worker:
            data = worker.submit(_read_latest).result(timeout=30)
        context_path.write_bytes(data)
        page.get_by_label("File (JSON, XML or zip)").set_input_files(str(context_path))
        page.locator("#import-format").select_option("coco")
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_test_id("import-summary")).to_contain_text("would create 1 annotations on 1 images")
        browser.close()
    assert console_errors == []
    assert foreign == []


def _read_latest() -> bytes:
    try:
        export = Export.objects.select_related("data_key").order_by("-id").first()
        assert export is not None
        return read_export(export)
    finally:
        connection.close()
