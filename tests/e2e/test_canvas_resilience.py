"""The canvas never loses work and never overwrites someone else's silently, in a real browser:

- two sessions edit the same annotation: the second save gets 409, the page says so and offers to reload the
  other's state or to put its own change on top; either choice ends with exactly that in the database;
- the server cannot be reached: the change stays on the page, marked unsaved, and is stored once it can be;
- a model's proposals are drawn dashed, accepted with one key, or deleted, and the database records both.

STIG: V-222602 (strict CSP holds on every page: a violation is a console error and fails the test).
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Route, expect, sync_playwright

from appliance.labeling.actions import next_task, save_annotations
from appliance.labeling.models import Annotation, AnnotationRevision
from tests.e2e.canvas import Canvas, cast, close, live_shapes, signed_in, stored
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS


def _with_box(task_id: int) -> int:
    from appliance.accounts.models import User
    from appliance.labeling.models import Task

    analyst = User.objects.get(username="e2e-ana")
    task = next_task(analyst, project=Task.objects.get(pk=task_id).project)
    assert task is not None
    change = {"op": "create", "kind": "box", "geometry": [100, 100, 160, 80], "class_name": "pier"}
    return save_annotations(analyst, task=task, changes=[change], task_version=task.version).created[0].pk


def test_two_sessions_edit_one_annotation_and_the_second_chooses(app_server: str, artifacts: Path) -> None:
    project_id, task_id = cast()
    box_id = _with_box(task_id)
    url = f"{app_server}/projects/{project_id}/tasks/{task_id}/"
    errors: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with (
            signed_in(browser, app_server, "e2e-ana", url, errors) as first,
            signed_in(browser, app_server, "e2e-ana", url, errors) as second,
        ):
            one, two = Canvas(first), Canvas(second)
            one.drag((180, 140), (200, 140))  # the first session moves the box 20 px right
            one.saved()
            assert close(stored(lambda: Annotation.objects.get(pk=box_id).geometry), [120, 100, 160, 80])

            two.drag((180, 140), (180, 170))  # the second, still on the old version, moves it 30 px down
            expect(second.get_by_test_id("conflict")).to_be_visible()
            expect(second.get_by_test_id("save-state")).to_contain_text("Conflict")
            second.screenshot(path=str(artifacts / "canvas-conflict.png"))
            assert close(stored(lambda: Annotation.objects.get(pk=box_id).geometry), [120, 100, 160, 80])

            # "Reload theirs": the page shows the first session's box, and nothing of the second's is stored.
            second.get_by_test_id("conflict-reload").click()
            two.saved()
            expect(second.get_by_test_id("conflict")).to_be_hidden()
            assert second.locator("svg.canvas rect.shape").get_attribute("x") == "120"

            # Again, and this time "keep mine on top": the second session's move is stored over the first's.
            one.drag((200, 140), (220, 140))
            one.saved()
            two.drag((200, 140), (200, 170))
            expect(second.get_by_test_id("conflict")).to_be_visible()
            second.get_by_test_id("conflict-merge").click()
            two.saved()
            assert close(stored(lambda: Annotation.objects.get(pk=box_id).geometry), [120, 130, 160, 80])
        browser.close()
    versions = stored(
        lambda: list(AnnotationRevision.objects.filter(annotation_id=box_id).values_list("version", flat=True))
    )
    assert versions == [1, 2, 3, 4]  # created, first's move, first's second move, second's merged move
    # The browser logs each 409 as a failed resource load; nothing else may be in the console.
    assert len(errors) == 2
    assert all("status of 409" in e for e in errors), errors


def test_unsaved_work_survives_a_lost_connection(app_server: str, artifacts: Path) -> None:
    project_id, task_id = cast()
    url = f"{app_server}/projects/{project_id}/tasks/{task_id}/"
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with signed_in(browser, app_server, "e2e-ana", url, errors) as page:
            canvas = Canvas(page)
            refused: list[str] = []

            def unreachable(route: Route) -> None:
                refused.append(route.request.url)
                route.abort("connectionrefused")

            page.route("**/annotations", unreachable)
            page.keyboard.press("b")
            canvas.drag((300, 300), (360, 340))
            expect(page.get_by_test_id("save-state")).to_contain_text("Offline")
            page.screenshot(path=str(artifacts / "canvas-offline.png"))
            assert refused
            assert stored(lambda: live_shapes(task_id)) == []
            page.unroute("**/annotations")
            canvas.saved()
            [box] = stored(lambda: live_shapes(task_id))
            assert close(box["geometry"], [300, 300, 60, 40])
        browser.close()
    # A browser logs each refused request as a console error; nothing else may be.
    assert all("ERR_CONNECTION_REFUSED" in e or "Failed to load resource" in e for e in errors), errors


def test_proposals_are_dashed_accepted_with_one_key_or_deleted(app_server: str, artifacts: Path) -> None:
    project_id, task_id = cast()
    from appliance.accounts.models import User
    from appliance.labeling.models import Task

    analyst = User.objects.get(username="e2e-ana")
    task = next_task(analyst, project=Task.objects.get(pk=task_id).project)
    assert task is not None
    proposals = [
        {
            "op": "create",
            "kind": "box",
            "geometry": g,
            "class_name": "vessel",
            "source": "model",
            "model_ref": "layout@1",
            "confidence": c,
        }
        for g, c in (([100, 100, 160, 80], 0.91), ([380, 120, 160, 180], 0.55))
    ]
    created = save_annotations(analyst, task=task, changes=proposals, task_version=task.version).created
    url = f"{app_server}/projects/{project_id}/tasks/{task_id}/"
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with signed_in(browser, app_server, "e2e-ana", url, errors) as page:
            canvas = Canvas(page)
            expect(page.locator("svg.canvas .shapes .proposal")).to_have_count(2)
            expect(page.get_by_test_id("counts")).to_have_text("2 annotations, 2 proposals to check")
            page.screenshot(path=str(artifacts / "canvas-proposals.png"))
            page.keyboard.press("a")  # accepts the first proposal and selects the next
            canvas.saved()
            page.keyboard.press("Delete")  # the second, now selected, is wrong
            canvas.saved()
            expect(page.locator("svg.canvas .shapes .proposal")).to_have_count(0)
        browser.close()
    accepted = stored(lambda: Annotation.objects.get(pk=created[0].pk))
    assert (accepted.source, accepted.model_ref, accepted.deleted) == ("human", "layout@1", False)
    assert stored(lambda: Annotation.objects.get(pk=created[1].pk).deleted)
    assert errors == []
