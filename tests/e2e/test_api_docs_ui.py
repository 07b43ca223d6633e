"""Swagger UI in a real browser: it renders the appliance's OpenAPI description under the strict Content Security
Policy, from packaged files only (no request leaves the appliance, no CSP violation)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Request, expect, sync_playwright

from appliance.accounts.actions import create_user
from appliance.auditlog.context import AuditContext, audit_context
from tests.conftest import STRONG_PASSWORD
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS


def test_swagger_ui_renders_the_api_under_the_csp(app_server: str, artifacts: Path) -> None:
    with audit_context(AuditContext(component="cli", actor="os:e2e")):
        create_user(username="e2e-docs", roles=["analyst"], clearance="SECRET", password=STRONG_PASSWORD, by=None)
    docs_url = f"{app_server}/api/docs/"
    violations: list[str] = []
    foreign: list[str] = []
    origin = urlsplit(app_server).netloc

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    def on_request(request: Request) -> None:
        if urlsplit(request.url).netloc not in ("", origin):
            foreign.append(request.url)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("console", on_console)
        page.on("request", on_request)
        page.goto(f"{app_server}/")  # an API answers 401, not a sign-in page: sign in on the pages first
        page.get_by_role("button", name="I acknowledge").click()
        page.get_by_label("Username").fill("e2e-docs")
        page.get_by_label("Password").fill(STRONG_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{app_server}/")
        page.goto(docs_url)
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Labeling appliance API", timeout=15_000)
        expect(page.locator(".opblock-summary-path", has_text="/api/datasets/{dataset_id}/items").first).to_be_visible()
        page.screenshot(path=str(artifacts / "api-docs.png"))
        browser.close()

    assert not violations, violations
    assert not foreign, foreign
