"""The auditor's whole day in a real browser: sign in (notice, password, TOTP), search, open a record and see its
proof verified, verify the whole log to 100 %, and download an export that verifies offline.

Django's ORM refuses to run while Playwright's sync API holds an event loop in this thread, so every database
read and write happens before the browser starts or after it closes; the live server thread does the rest.

STIG: V-222487/V-222488 (review and filter), V-222500 (only the auditor reads), V-222503 (audit tools usable by
the auditor), V-222507 (integrity verified), V-222523 (second factor for the privileged role).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import ConsoleMessage, expect, sync_playwright

from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog.checkpoints import make_checkpoint
from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from audit.bundle import verify_bundle
from tests.conftest import STRONG_PASSWORD
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS


def _auditor_with_device() -> TOTPDevice:
    user = User(username="e2e-aud", roles=["auditor"], clearance="UNCLASSIFIED", compartments=[])
    user.set_password(STRONG_PASSWORD)
    user.save()
    security = get_policy().security
    return TOTPDevice.objects.create(
        user=user,
        name="authenticator",
        confirmed=True,
        step=security.totp_step_seconds,
        tolerance=security.totp_tolerance_steps,
    )


def _code(device: TOTPDevice) -> str:
    """What the auditor's authenticator app shows now (no database access: safe inside the browser session)."""
    return str(totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)).zfill(device.digits)


def test_an_auditor_searches_proves_verifies_and_exports_in_a_browser(app_server, artifacts, tmp_path):
    device = _auditor_with_device()
    for index in range(30):
        record(action="e2e.seed", actor="seeder", object_type="thing", object_id=str(index), label="UNCLASSIFIED")
    make_checkpoint(force=True)
    seed_seq = AuditRecord.objects.filter(action="e2e.seed").order_by("-seq").first().seq
    shots = {name: artifacts / f"{name}.png" for name in ("search", "record", "verify", "export")}

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        console_errors: list[str] = []

        def keep_error(message: ConsoleMessage) -> None:
            # The browser's own favicon probe 404s (the appliance has none); anything else is a real failure.
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
                console_errors.append(f"{message.text} ({message.location.get('url', '')})")

        page.on("console", keep_error)

        # Sign in through the real pages: the notice, the password, the second factor, then back to the workspace.
        page.goto(f"{app_server}/audit/")
        expect(page.get_by_test_id("dod-notice")).to_be_visible()
        page.get_by_role("button", name="I acknowledge").click()
        page.get_by_label("Username").fill("e2e-aud")
        page.get_by_label("Password").fill(STRONG_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.locator("input[name=code]").fill(_code(device))
        page.get_by_role("button", name="Verify and sign in").click()
        page.wait_for_url(f"{app_server}/audit/")

        # Search: filter by action and actor; the table shows only those, newest first, 50 at most.
        page.locator("#f-action").fill("e2e.seed")
        page.locator("#f-actor").fill("seeder")
        page.get_by_role("button", name="Search").click()
        rows = page.get_by_test_id("audit-results").locator("tbody tr")
        expect(rows).to_have_count(30)
        expect(rows.first).to_contain_text("e2e.seed")
        expect(rows.first.locator("td").first).to_have_text(str(seed_seq))
        page.screenshot(path=str(shots["search"]), full_page=True)

        # A record: its full text, leaf hash and an inclusion proof verified against the signed checkpoint.
        rows.first.get_by_role("link").click()
        expect(page.get_by_role("heading", name=f"Audit record {seed_seq}")).to_be_visible()
        expect(page.get_by_test_id("audit-record")).to_contain_text('"action": "e2e.seed"')
        expect(page.get_by_test_id("proof-result")).to_contain_text("Verified: this record is leaf")
        expect(page.get_by_test_id("proof-hashes").locator("li").first).to_be_visible()
        page.screenshot(path=str(shots["record"]), full_page=True)

        # Verify now: the module script drives the chunked API to 100 % and shows the result.
        page.get_by_role("link", name="Verify now").click()
        page.get_by_test_id("verify-start").click()
        expect(page.get_by_test_id("verify-status")).to_contain_text("Result: OK", timeout=60_000)
        expect(page.get_by_test_id("verify-progress")).to_have_attribute("value", "100")
        page.screenshot(path=str(shots["verify"]), full_page=True)

        # Export: a .tar.gz download.
        page.get_by_role("link", name="Export").click()
        page.screenshot(path=str(shots["export"]), full_page=True)
        with page.expect_download() as download_info:
            page.get_by_test_id("export-start").click()
        download = download_info.value
        archive = tmp_path / download.suggested_filename
        download.save_as(archive)
        context.close()
        browser.close()

    assert not console_errors, console_errors  # no CSP violation, no failed module load
    assert archive.name.endswith(".tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(tmp_path / "bundle", filter="data")
    [bundle] = list((tmp_path / "bundle").iterdir())
    report = verify_bundle(Path(bundle))
    assert report.end > seed_seq
    for shot in shots.values():
        assert shot.stat().st_size > 0

    verifications = [json.loads(r.canonical) for r in AuditRecord.objects.filter(action="audit.verify")]
    assert [(v["actor"], v["details"]["phase"], v["outcome"]) for v in verifications] == [
        ("e2e-aud", "start", "ok"),
        ("e2e-aud", "end", "ok"),
    ]
    assert AuditRecord.objects.filter(action="audit.search", actor="e2e-aud").exists()
    assert AuditRecord.objects.filter(action="audit.view", actor="e2e-aud", object_id=str(seed_seq)).exists()
    assert AuditRecord.objects.filter(action="audit.export", actor="e2e-aud").exists()
    assert AuditRecord.objects.filter(action="auth.login", actor="e2e-aud").exists()
