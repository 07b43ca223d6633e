"""What the canvas tests share: a labeled project with one image, signing in through the real pages, the mouse in
image pixels, and database reads from outside the thread where Playwright's event loop runs (Django's ORM refuses
to run in that one)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import connection
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from appliance.accounts.actions import create_user
from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import add_member, create_dataset
from appliance.labeling.actions import add_project_member, create_project, create_tasks
from appliance.labeling.models import Annotation
from tests.conftest import STRONG_PASSWORD
from tests.labeling.conftest import import_images_as

IMAGE = (640, 480)
SCHEMA = {
    "classes": [
        {
            "name": "vessel",
            "colour": "#e4572e",
            "shortcut": "1",
            "attributes": [{"name": "moored", "kind": "checkbox"}],
        },
        {"name": "pier", "colour": "#29335c", "shortcut": "2", "attributes": []},
    ]
}


def stored(read: Callable[[], Any]) -> Any:
    """Run an ORM read outside the thread Playwright's event loop lives in."""

    def run() -> Any:
        try:
            return read()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def live_shapes(task_id: int) -> list[dict[str, Any]]:
    return [
        {"kind": a.kind, "class": a.class_name, "geometry": a.geometry, "version": a.version, "source": a.source}
        for a in Annotation.objects.filter(task_id=task_id, deleted=False).order_by("id")
    ]


def harbour_png() -> bytes:
    picture = Image.new("RGB", IMAGE, (40, 80, 120))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((100, 100, 260, 180), fill=(200, 200, 200))
    draw.polygon([(380, 120), (540, 140), (500, 300)], fill=(120, 60, 30))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def cast() -> tuple[int, int]:
    with audit_context(AuditContext(component="cli", actor="os:e2e")):
        admin = User.objects.create(username="e2e-admin", roles=["admin"], clearance="TOP SECRET")
        people = {
            name: create_user(
                username=name,
                roles=[role],
                clearance="SECRET",
                compartments=["ALPHA"],
                password=STRONG_PASSWORD,
                by=admin,
            )
            for name, role in (("e2e-man", "manager"), ("e2e-ana", "analyst"), ("e2e-rev", "reviewer"))
        }
    people["e2e-man"].compartments = ["ALPHA"]
    manager = people["e2e-man"]
    dataset = create_dataset(manager, name="harbour", classification="SECRET", compartments=["ALPHA"])
    import_images_as(dataset, manager, {"harbour.png": harbour_png()})
    for name in ("e2e-ana", "e2e-rev"):
        add_member(manager, dataset=dataset, member=people[name])
    project = create_project(manager, name="harbour watch", dataset_ids=[dataset.pk], schema=SCHEMA)
    for name in ("e2e-ana", "e2e-rev"):
        add_project_member(manager, project=project, member=people[name])
    create_tasks(manager, project=project)
    return project.pk, project.tasks.get().pk


@contextmanager
def signed_in(browser: Browser, app_server: str, username: str, url: str, errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)

    def keep_error(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{username}: {message.text}")

    page.on("console", keep_error)
    page.goto(url)
    page.get_by_role("button", name="I acknowledge").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url)
    try:
        yield page
    finally:
        context.close()


class Canvas:
    """Mouse and keyboard on the canvas, in image pixels (converted through the image's box on screen)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        expect(page.get_by_test_id("workbench")).to_have_attribute("data-ready", "true")

    def at(self, x: float, y: float) -> tuple[float, float]:
        box = self.page.locator("svg.canvas image").bounding_box()
        assert box is not None
        scale = box["width"] / IMAGE[0]
        return box["x"] + x * scale, box["y"] + y * scale

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        mouse = self.page.mouse
        mouse.move(*self.at(*start))
        mouse.down()
        for step in range(1, 6):
            mouse.move(*self.at(start[0] + (end[0] - start[0]) * step / 5, start[1] + (end[1] - start[1]) * step / 5))
        mouse.up()

    def click(self, x: float, y: float) -> None:
        self.page.mouse.click(*self.at(x, y))

    def saved(self) -> None:
        expect(self.page.get_by_test_id("save-state")).to_have_text("All changes saved")


def close(actual: list[float], expected: list[float], tolerance: float = 3.0) -> bool:
    return len(actual) == len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))
