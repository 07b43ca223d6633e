"""The rest of the canvas's tools in a real browser, each checked against what the database stores: a rotated box
drawn and turned by its knob, a polyline, a set of points, an image-level tag, an attribute set in the panel, a
vertex added and removed, zoom that keeps the pointer's pixel in place, and the help overlay listing the keys.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from appliance.labeling.models import Annotation
from tests.e2e.canvas import Canvas, cast, close, live_shapes, signed_in, stored
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS


def test_every_kind_of_shape_and_the_panel(app_server: str, artifacts: Path) -> None:
    project_id, task_id = cast()
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with signed_in(browser, app_server, "e2e-ana", f"{app_server}/projects/{project_id}/next", errors) as page:
            page.get_by_test_id("open-next").click()
            canvas = Canvas(page)

            # A rotated box, drawn upright, then turned by dragging its knob to the right of its centre (90°).
            page.keyboard.press("r")
            canvas.drag((100, 200), (200, 260))
            knob = page.locator("svg.canvas-top .handle.rotate").bounding_box()
            assert knob is not None
            page.mouse.move(knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2)
            page.mouse.down()
            page.mouse.move(*canvas.at(190, 230), steps=5)
            page.mouse.move(*canvas.at(250, 230), steps=5)
            page.mouse.up()
            canvas.saved()
            [rotated] = stored(lambda: live_shapes(task_id))
            assert rotated["kind"] == "rotated_box"
            assert close(rotated["geometry"], [150, 230, 100, 60, 90])

            # The attribute panel: "moored" is a checkbox of the vessel class.
            page.get_by_label("moored").check()
            canvas.saved()
            assert stored(lambda: Annotation.objects.get(kind="rotated_box").attributes) == {"moored": True}

            # A polyline (Enter ends it), then a vertex added by double-clicking an edge and one removed by Alt+click.
            page.keyboard.press("l")
            for point in ((300, 50), (400, 80), (500, 50)):
                canvas.click(*point)
            page.keyboard.press("Enter")
            canvas.saved()
            page.keyboard.press("v")  # the drawing tool stays on for the next line; editing is the select tool's
            page.mouse.dblclick(*canvas.at(350, 65))
            canvas.saved()
            line = stored(lambda: live_shapes(task_id))[1]
            assert line["kind"] == "polyline"
            assert len(line["geometry"]) == 4
            assert close(line["geometry"][1], [350, 65])
            page.keyboard.down("Alt")
            canvas.click(400, 80)
            page.keyboard.up("Alt")
            canvas.saved()
            line = stored(lambda: live_shapes(task_id))[1]
            assert [[round(x), round(y)] for x, y in line["geometry"]] == [[300, 50], [350, 65], [500, 50]]

            # Points: three clicks and Enter make one annotation of three points.
            page.keyboard.press("o")
            for point in ((50, 400), (80, 420), (110, 400)):
                canvas.click(*point)
            page.keyboard.press("Enter")
            canvas.saved()
            points = stored(lambda: live_shapes(task_id))[2]
            assert points["kind"] == "points"
            assert close([c for p in points["geometry"] for c in p], [50, 400, 80, 420, 110, 400])

            # A tag of the current class (pier, by its key) on the whole image.
            page.keyboard.press("Escape")
            page.keyboard.press("2")
            page.keyboard.press("t")
            canvas.saved()
            tag = stored(lambda: live_shapes(task_id))[3]
            assert (tag["kind"], tag["class"], tag["geometry"]) == ("tag", "pier", None)

            # Zooming in keeps the image pixel under the pointer where it was.
            before = canvas.at(320, 240)
            page.mouse.move(*before)
            page.mouse.wheel(0, -600)
            page.wait_for_timeout(100)
            box = page.locator("svg.canvas image").bounding_box()
            assert box is not None
            scale = box["width"] / 640
            assert scale > 1
            assert abs(box["x"] + 320 * scale - before[0]) < 1.5
            assert abs(box["y"] + 240 * scale - before[1]) < 1.5

            page.keyboard.press("?")
            help_box = page.get_by_test_id("help")
            expect(help_box).to_be_visible()
            expect(help_box).to_contain_text("Draw a rotated box")
            expect(help_box).to_contain_text("Ctrl+Z")
            page.screenshot(path=str(artifacts / "canvas-help.png"))
            page.keyboard.press("Escape")
            expect(help_box).to_be_hidden()
        browser.close()
    assert errors == []
