"""Pre-labeling in a real browser: a manager starts the layout model on a project of synthetic documents from the
project's pre-label page, a worker runs the job from the database queue, the member analyst sees the proposals
dashed in the canvas and accepts one with one key, and the model's page counts it.

The signed demo models come from `make models` (the wheels in .model-cache; without them the test is skipped with
the reason). The worker is the database backend's own, run in a thread of its own (with its own connection to the
live server's committed database) while the browser waits.

STIG: V-222425 (only a manager of the project may run a model on it; the analyst only sees what they may).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from appliance.accounts.models import User
from appliance.inference.models import Job
from appliance.labeling.models import Annotation
from tests.conftest import STRONG_PASSWORD
from tests.e2e.canvas import Canvas, signed_in, stored
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.inference.conftest import Packaged, build_site, package_for_tests
from tests.inference.test_prelabel_flow import run_worker


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    return package_for_tests(tmp_path_factory)


def _with_passwords(*users: User) -> None:
    for user in users:
        user.set_password(STRONG_PASSWORD)
        user.save(update_fields=["password"])


def test_a_manager_pre_labels_and_the_analyst_accepts_a_proposal(
    app_server: str, artifacts: Path, packaged: Packaged
) -> None:
    site = build_site(packaged, count=1)
    _with_passwords(site.manager, site.analyst)
    project_id = site.project.pk
    errors: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        jobs_url = f"{app_server}/models/projects/{project_id}/prelabel"
        with signed_in(browser, app_server, site.manager.username, jobs_url, errors) as page:
            page.get_by_label("Model").select_option(label=f"{site.layout.ref} ({site.layout.task})")
            page.get_by_role("button", name="Pre-label new tasks").click()
            expect(page.get_by_test_id("prelabel-jobs")).to_contain_text("queued")
            stored(run_worker)
            page.goto(jobs_url)
            expect(page.get_by_test_id("prelabel-jobs")).to_contain_text("done")
            expect(page.get_by_test_id("prelabel-jobs")).to_contain_text("CPUExecutionProvider")
            page.screenshot(path=str(artifacts / "prelabel-job.png"))
        job = stored(lambda: Job.objects.get())
        assert (job.state, job.done, job.total) == ("done", 1, 1)
        assert job.proposals > 0

        with signed_in(
            browser, app_server, site.analyst.username, f"{app_server}/projects/{project_id}/next", errors
        ) as page:
            page.get_by_test_id("open-next").click()
            canvas = Canvas(page)
            proposals = page.locator("svg.canvas .shapes .proposal")
            expect(proposals).to_have_count(job.proposals)
            page.screenshot(path=str(artifacts / "prelabel-canvas.png"))
            page.keyboard.press("a")
            canvas.saved()
            expect(proposals).to_have_count(job.proposals - 1)

        with signed_in(
            browser, app_server, site.manager.username, f"{app_server}/models/{site.layout.pk}/", errors
        ) as page:
            total = page.get_by_test_id("model-quality").locator("tfoot tr[data-class=all] td")
            expect(total.nth(0)).to_have_text(str(job.proposals))  # proposed
            expect(total.nth(2)).to_have_text("1")  # accepted unchanged
            page.screenshot(path=str(artifacts / "prelabel-model.png"))
        browser.close()

    confirmed = Annotation.objects.filter(task__project_id=project_id, source="human", model_ref=site.layout.ref)
    assert confirmed.count() == 1
    assert errors == []
