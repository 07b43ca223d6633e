"""The annotation canvas in a real browser, the whole round: an analyst opens the next task, draws a box and a
polygon with the mouse, sets a class by its shortcut, drags a vertex, undoes and redoes, lets autosave store it and
submits; a reviewer rejects one annotation with a comment; the analyst sees the remark, fixes the shape and
submits again; the reviewer accepts. What the database holds is checked after every step, and a screenshot of
every step is kept under test-artifacts/e2e/.

Every database read during the browser session runs in a worker thread (`stored`), against the live server's
committed data.

STIG: V-222425 (the reviewer's decision is enforced by the server, not the page), V-222602 (strict CSP: no inline
script or style; a violation would be a console error and fail the test).
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from appliance.auditlog.models import AuditRecord
from appliance.labeling.models import Annotation, AnnotationRevision, ReviewComment, Task
from tests.e2e.canvas import Canvas, cast, close, live_shapes, signed_in, stored
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS


def test_an_analyst_labels_a_reviewer_sends_it_back_and_then_accepts(app_server: str, artifacts: Path) -> None:
    project_id, task_id = cast()
    next_url = f"{app_server}/projects/{project_id}/next"
    errors: list[str] = []
    shot = lambda page, name: page.screenshot(path=str(artifacts / f"canvas-{name}.png"))  # noqa: E731

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with signed_in(browser, app_server, "e2e-ana", next_url, errors) as page:
            page.get_by_test_id("open-next").click()
            page.wait_for_url(f"**/projects/{project_id}/tasks/{task_id}/")
            canvas = Canvas(page)
            assert stored(lambda: Task.objects.get(pk=task_id).lock_holder.username) == "e2e-ana"
            shot(page, "1-opened")

            # A box, drawn with the mouse; the class by its shortcut (2 = pier) while it is selected.
            page.keyboard.press("b")
            canvas.drag((100, 100), (260, 180))
            page.keyboard.press("2")
            canvas.saved()
            [box] = stored(lambda: live_shapes(task_id))
            assert box["kind"] == "box"
            assert box["class"] == "pier"
            assert close(box["geometry"], [100, 100, 160, 80])

            # A polygon, vertex by vertex, closed by clicking its first vertex; "1" makes it a vessel.
            page.keyboard.press("p")
            page.keyboard.press("1")
            for x, y in ((380, 120), (540, 140), (500, 300)):
                canvas.click(x, y)
            canvas.click(380, 120)
            canvas.saved()
            shapes = stored(lambda: live_shapes(task_id))
            polygon = shapes[1]
            assert polygon["kind"] == "polygon"
            assert polygon["class"] == "vessel"
            assert close([c for p in polygon["geometry"] for c in p], [380, 120, 540, 140, 500, 300])
            shot(page, "2-drawn")

            # Drag the polygon's third vertex; then undo (back where it was) and redo (moved again).
            page.keyboard.press("v")
            canvas.drag((500, 300), (470, 330))
            canvas.saved()
            moved = stored(lambda: live_shapes(task_id))[1]
            assert close(moved["geometry"][2], [470, 330])
            assert moved["version"] == 2
            page.keyboard.press("Control+z")
            canvas.saved()
            assert close(stored(lambda: live_shapes(task_id))[1]["geometry"][2], [500, 300])
            page.keyboard.press("Control+Shift+z")
            canvas.saved()
            again = stored(lambda: live_shapes(task_id))[1]
            assert close(again["geometry"][2], [470, 330])
            assert again["version"] == 4
            history = stored(
                lambda: list(AnnotationRevision.objects.filter(annotation__kind="polygon").order_by("version"))
            )
            assert [r.version for r in history] == [1, 2, 3, 4]  # created, dragged, undone, redone
            assert history[2].after["geometry"] == history[0].after["geometry"]
            shot(page, "3-edited")

            page.get_by_test_id("submit").click()
            expect(page.get_by_test_id("task-state")).to_have_text("submitted")
            assert stored(lambda: Task.objects.get(pk=task_id).state) == "submitted"

        # The reviewer opens the submitted task, comments on the box and rejects.
        with signed_in(
            browser, app_server, "e2e-rev", f"{app_server}/projects/{project_id}/review-next", errors
        ) as page:
            page.get_by_test_id("open-next").click()
            page.wait_for_url(f"**/projects/{project_id}/tasks/{task_id}/")
            canvas = Canvas(page)
            box_id = stored(lambda: Annotation.objects.get(task_id=task_id, kind="box").pk)
            canvas.click(180, 140)
            page.get_by_test_id("annotation-comment").fill("The pier runs on to x = 300.")
            shot(page, "4-review")
            page.get_by_test_id("review-reject").click()
            expect(page.get_by_test_id("task-state")).to_have_text("rejected")
            comment = stored(lambda: ReviewComment.objects.get(task_id=task_id))
            assert (comment.annotation_id, comment.text) == (box_id, "The pier runs on to x = 300.")
            assert stored(lambda: Task.objects.get(pk=task_id).state) == "rejected"

        # The analyst gets the task back first, sees the remark, widens the box and submits again.
        with signed_in(browser, app_server, "e2e-ana", next_url, errors) as page:
            page.get_by_test_id("open-next").click()
            page.wait_for_url(f"**/projects/{project_id}/tasks/{task_id}/")
            canvas = Canvas(page)
            expect(page.get_by_test_id("remarks")).to_contain_text("The pier runs on to x = 300.")
            page.get_by_test_id("remarks").get_by_role("button").click()
            canvas.drag((260, 180), (300, 180))  # the bottom-right corner handle
            canvas.saved()
            fixed = stored(lambda: Annotation.objects.get(pk=box_id))
            assert close(fixed.geometry, [100, 100, 200, 80]), fixed.geometry
            shot(page, "5-fixed")
            page.get_by_test_id("submit").click()
            expect(page.get_by_test_id("task-state")).to_have_text("submitted")

        with signed_in(
            browser, app_server, "e2e-rev", f"{app_server}/projects/{project_id}/review-next", errors
        ) as page:
            page.get_by_test_id("open-next").click()
            Canvas(page)
            page.get_by_test_id("review-accept").click()
            expect(page.get_by_test_id("task-state")).to_have_text("accepted")
            shot(page, "6-accepted")
        browser.close()

    assert errors == []
    task = Task.objects.get(pk=task_id)
    assert task.state == "accepted"
    assert task.reviewed_by.username == "e2e-rev"
    actions = list(
        AuditRecord.objects.filter(object_type="task", object_id=str(task_id)).values_list("action", flat=True)
    )
    assert actions.count("annotation.save") >= 5
    assert actions.count("task.submit") == 2
    assert actions[-1] == "task.accept"
    assert "task.reject" in actions
