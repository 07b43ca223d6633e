"""A manager imports imagery in a real browser and looks at it: the dataset page, the import with its progress,
the thumbnail grid, one item, and a refused import that leaves the grid as it was.

Django's ORM refuses to run while Playwright's sync API holds an event loop in this thread, so the people and the
dataset are made before the browser starts and the audit log is read after it closes; the live server thread does
the rest. The upload is throttled through the DevTools protocol so the progress bar has time to be seen moving; the
page's strict CSP stays on (only the test's observer, evaluated by the DevTools protocol, runs outside it).

STIG: V-222425/V-222427 (only a cleared member sees the imagery), V-222602 (no inline script, nothing from another
origin).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image, ImageChops, ImageDraw
from playwright.sync_api import ConsoleMessage, Page, Request, Route, expect, sync_playwright

from appliance.accounts.actions import create_user
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.models import AuditRecord
from appliance.datasets.actions import create_dataset
from appliance.datasets.models import Dataset, Item
from tests.conftest import STRONG_PASSWORD
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

# Three shapes of image, so the grid's square cards are seen to fit landscape, portrait and square alike.
IMAGES = {
    "harbour-north.jpg": ((800, 500), ((20, 70), (60, 150), (90, 210))),
    "harbour-east-pier-with-a-long-descriptive-name.jpg": ((400, 600), ((90, 200), (60, 130), (20, 60))),
    "harbour-west.jpg": ((600, 600), ((30, 90), (110, 200), (40, 90))),
}
UPLOAD_BYTES_PER_SECOND = 192 * 1024  # ~3 s for the three images: long enough to see the bar move

# Records every state the import form's progress bar and status line pass through. Installed by the DevTools
# protocol (not subject to the page's CSP), on `document`, so it outlives the <body> the module swaps in.
OBSERVE_PROGRESS = """() => {
  window.seenProgress = [];
  const note = () => {
    const bar = document.querySelector("[data-testid=import-progress]");
    const status = document.querySelector("[data-testid=import-status]");
    if (!bar) return;
    const button = bar.closest("form").querySelector("button[type=submit]");
    window.seenProgress.push({
      hidden: bar.hidden,
      value: bar.hasAttribute("value") ? bar.value : null,
      status: status ? status.textContent : "",
      disabled: button.disabled,
    });
  };
  new MutationObserver(note).observe(document, {
    subtree: true, childList: true, attributes: true, characterData: true,
  });
}"""

THUMBNAILS_LOADED = """() => {
  const images = [...document.querySelectorAll("[data-testid=item-grid] img")];
  return images.length > 0 && images.every((image) => image.complete && image.naturalWidth > 0);
}"""


def _image(size: tuple[int, int], ramps: tuple[tuple[int, int], ...]) -> bytes:
    """A gradient with a ring, roughened with noise: distinct per image, and big enough to show upload progress."""
    width, height = size
    ramp = Image.linear_gradient("L").resize(size)
    channels = [ramp.point(lambda v, low=low, high=high: low + (high - low) * v // 255) for low, high in ramps]
    picture = Image.merge("RGB", channels)
    ImageDraw.Draw(picture).ellipse(
        (width * 0.3, height * 0.3, width * 0.7, height * 0.7), outline=(255, 255, 255), width=max(3, width // 80)
    )
    picture = ImageChops.add(picture, Image.effect_noise(size, 24).convert("RGB"), offset=-100)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=92)
    return out.getvalue()


def _sign_in(page: Page, app_server: str, dataset_url: str) -> None:
    """Through the real pages: the notice, then the password form, then back where the manager was going."""
    page.goto(dataset_url)
    page.get_by_role("button", name="I acknowledge").click()
    page.get_by_label("Username").fill("e2e-man")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(dataset_url)


def _expect_banners(page: Page, text: str) -> None:
    expect(page.get_by_test_id("banner-top")).to_have_text(text)
    expect(page.get_by_test_id("banner-bottom")).to_have_text(text)


def _expect_grid_of(page: Page, names: list[str]) -> None:
    grid = page.get_by_test_id("item-grid")
    expect(grid.locator("img")).to_have_count(len(names))
    expect(grid.locator(".item-name")).to_have_text(names)
    page.wait_for_function(THUMBNAILS_LOADED)
    widths = grid.locator("img").evaluate_all("(images) => images.map((image) => image.naturalWidth)")
    assert all(width > 0 for width in widths), widths


def _bodies(action: str) -> list[dict]:
    return [json.loads(row.canonical) for row in AuditRecord.objects.filter(action=action).order_by("seq")]


def _survey_with_manager() -> Dataset:
    """A SECRET//ALPHA dataset created by a manager (its first member), who is created as an operator would."""
    with audit_context(AuditContext(component="cli", actor="os:e2e")):
        manager = create_user(
            username="e2e-man",
            roles=["manager"],
            clearance="TOP SECRET",
            compartments=["ALPHA", "BRAVO"],
            password=STRONG_PASSWORD,
            by=None,
        )
    return create_dataset(
        manager, name="harbour survey", description="Approaches, piers", classification="SECRET", compartments=["ALPHA"]
    )


def test_a_manager_imports_views_and_is_refused_a_disguised_file_in_a_browser(
    app_server: str, artifacts: Path, tmp_path: Path
) -> None:
    dataset = _survey_with_manager()
    label = dataset.access_label().banner()
    dataset_url = f"{app_server}/datasets/{dataset.pk}/"
    names = list(IMAGES)
    files = []
    for name, (size, ramps) in IMAGES.items():
        path = tmp_path / name
        path.write_bytes(_image(size, ramps))
        files.append(path)
    north_sha256 = hashlib.sha256(files[0].read_bytes()).hexdigest()
    liar = tmp_path / "liar.png"  # JPEG bytes under a PNG name: refused, and nothing else in the batch is stored
    liar.write_bytes(_image((320, 200), ((0, 255), (0, 255), (0, 255))))
    shots = {
        name: artifacts / f"datasets-{name}.png"
        for name in ("empty", "progress", "grid", "grid-narrow", "item", "refused")
    }
    grid_loads = 0  # server renders of the dataset page that showed thumbnails: each must be one audit record

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # Tall enough that every page fits: a full-page shot of a longer one pins the sticky banners mid-page.
        context = browser.new_context(viewport={"width": 1280, "height": 1200})
        page = context.new_page()
        page.set_default_timeout(20_000)
        requested: list[str] = []
        console_errors: list[str] = []

        def keep_request(request: Request) -> None:
            requested.append(request.url)

        def keep_error(message: ConsoleMessage) -> None:
            # Expected: the browser's favicon probe 404s (the appliance has none), and the refused import is a 400
            # the browser logs. Anything else (a CSP violation, a module that failed to load) is a real failure.
            url = message.location.get("url", "")
            expected = url.endswith("/favicon.ico") or (url.endswith("/import") and "status of 400" in message.text)
            if message.type == "error" and not expected:
                console_errors.append(f"{message.text} ({url})")

        page.on("request", keep_request)
        page.on("console", keep_error)
        _sign_in(page, app_server, dataset_url)

        # The empty dataset: its label on the page and in both banners, the import form, no grid yet.
        expect(page.get_by_role("heading", name="harbour survey")).to_be_visible()
        expect(page.get_by_test_id("dataset-label")).to_contain_text(label)
        _expect_banners(page, label)
        expect(page.get_by_test_id("item-grid")).to_have_count(0)
        page.screenshot(path=str(shots["empty"]), full_page=True)

        # Import three images through the file input; the upload is slowed so its progress can be seen.
        devtools = context.new_cdp_session(page)
        devtools.send("Network.enable")
        devtools.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": UPLOAD_BYTES_PER_SECOND},
        )
        page.evaluate(OBSERVE_PROGRESS)
        page.get_by_label("Images (JPEG, PNG, TIFF, WebP)").set_input_files(files)
        page.get_by_role("button", name="Import").click()
        progress = page.get_by_test_id("import-progress")
        expect(progress).to_be_visible()
        expect(page.get_by_role("button", name="Import")).to_be_disabled()
        page.wait_for_function(
            "() => { const bar = document.querySelector('[data-testid=import-progress]');"
            " return bar && bar.value > 0 && bar.value < 100; }"
        )
        page.screenshot(path=str(shots["progress"]), full_page=True)
        expect(page.locator(".messages")).to_contain_text("Imported 3 image(s) into harbour survey.", timeout=60_000)
        grid_loads += 1
        devtools.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        seen = page.evaluate("() => window.seenProgress")
        assert page.url == dataset_url
        _expect_grid_of(page, names)
        _expect_banners(page, label)
        page.screenshot(path=str(shots["grid"]), full_page=True)
        page.keyboard.press("Tab")  # from the focused message to the first card: its focus ring must show
        expect(page.get_by_role("link", name="harbour-north.jpg")).to_be_focused()
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(shots["grid-narrow"]))
        page.set_viewport_size({"width": 1280, "height": 1200})

        # One item: its preview loaded, its facts, the same label.
        page.get_by_role("link", name="harbour-north.jpg").click()
        expect(page.get_by_role("heading", name="harbour-north.jpg")).to_be_visible()
        preview = page.get_by_test_id("item-image")
        expect(preview).to_have_js_property("complete", True)
        assert preview.evaluate("(image) => image.naturalWidth") == 800
        facts = page.get_by_test_id("item-facts")
        expect(facts).to_contain_text("JPEG")
        expect(facts).to_contain_text("800 \N{MULTIPLICATION SIGN} 500 pixels")
        expect(facts).to_contain_text(north_sha256)
        expect(facts).to_contain_text("by e2e-man")
        expect(page.get_by_test_id("item-label")).to_contain_text(label)
        _expect_banners(page, label)
        page.screenshot(path=str(shots["item"]), full_page=True)

        # Back to the grid, then a disguised file: refused by name, nothing imported, the grid as it was.
        page.get_by_role("link", name="Back to harbour survey").click()
        _expect_grid_of(page, names)
        grid_loads += 1
        page.get_by_label("Images (JPEG, PNG, TIFF, WebP)").set_input_files([liar])
        page.get_by_role("button", name="Import").click()
        errors = page.get_by_test_id("import-errors")
        expect(errors).to_contain_text("liar.png")
        expect(errors).to_contain_text("Nothing was imported")
        expect(errors).to_be_focused()
        grid_loads += 1
        _expect_grid_of(page, names)
        _expect_banners(page, label)
        expect(page.get_by_role("button", name="Import")).to_be_enabled()
        page.screenshot(path=str(shots["refused"]), full_page=True)
        context.close()
        browser.close()

    assert not console_errors, console_errors  # no CSP violation, no failed module load
    # The progress bar appeared with the submit button disabled, moved, then turned indeterminate while the
    # server checked and encrypted.
    shown = [state for state in seen if not state["hidden"]]
    assert shown, seen
    assert all(state["disabled"] for state in shown), shown
    assert any(state["value"] is not None and 0 < state["value"] < 100 for state in shown), shown
    assert any(state["value"] is None and state["status"] == "Checking and encrypting 3 files…" for state in shown), (
        shown
    )

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(app_server))
    strays = [url for url in requested if "{0.scheme}://{0.netloc}".format(urlsplit(url)) != origin]
    assert not strays, strays

    assert sorted(Item.objects.filter(dataset=dataset).values_list("name", flat=True)) == sorted(names)
    thumbnail_pages = _bodies("dataset.thumbnails.view")
    assert len(thumbnail_pages) == grid_loads == 3
    items = list(Item.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True))
    assert all(body["details"]["items"] == items for body in thumbnail_pages)
    assert all(body["actor"] == "e2e-man" for body in thumbnail_pages)
    assert _bodies("item.view.thumbnail") == []  # every thumbnail was covered by its page's record
    [preview_view] = _bodies("item.view.preview")
    assert preview_view["object"]["id"] == str(Item.objects.get(name="harbour-north.jpg").pk)
    assert _bodies("item.view.image") == _bodies("item.download") == []
    for shot in shots.values():
        assert Path(shot).stat().st_size > 0


# What the form must say when the answer is not one of our pages; each is a stand-in for the front proxy or a
# dead connection, answered by the browser itself, since the live server cannot be made to fail this way.
FAILURES = [
    (
        "413",
        {"status": 413, "content_type": "text/html", "body": "<html><body>413 Request Entity Too Large</body></html>"},
        "larger than the server accepts (413)",
    ),
    (
        "502",
        {"status": 502, "content_type": "text/html", "body": "<html><body>502 Bad Gateway</body></html>"},
        "The server failed while importing (502)",
    ),
    (
        "bare-400",
        {"status": 400, "content_type": "text/html", "body": "<h1>Bad Request (400)</h1>"},
        "The server refused the request (400)",
    ),
    ("network", None, "The connection was lost"),
]


def _answering(answer: dict | None) -> Callable[[Route], None]:
    """A route handler that answers for the server (`answer`), or drops the connection when there is none."""

    def handle(route: Route) -> None:
        if answer is None:
            route.abort("connectionreset")
        else:
            route.fulfill(**answer)

    return handle


def test_a_failed_upload_is_explained_and_leaves_the_form_ready_to_send_again(
    app_server: str, artifacts: Path, tmp_path: Path
) -> None:
    dataset = _survey_with_manager()
    dataset_url = f"{app_server}/datasets/{dataset.pk}/"
    image = tmp_path / "harbour-north.jpg"
    image.write_bytes(_image((320, 200), ((20, 70), (60, 150), (90, 210))))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1200})
        page = context.new_page()
        page.set_default_timeout(20_000)
        csp_violations: list[str] = []
        page.on(
            "console",
            lambda message: csp_violations.append(message.text) if "Content Security Policy" in message.text else None,
        )
        _sign_in(page, app_server, dataset_url)
        page.get_by_label("Images (JPEG, PNG, TIFF, WebP)").set_input_files([image])
        status = page.get_by_test_id("import-status")
        for name, answer, said in FAILURES:
            page.route("**/import", _answering(answer))
            page.get_by_role("button", name="Import").click()
            expect(status).to_contain_text(said)
            expect(status).to_have_class("import-status failed")
            expect(page.get_by_role("button", name="Import")).to_be_enabled()
            expect(page.get_by_test_id("import-progress")).to_be_hidden()
            expect(page.get_by_test_id("banner-top")).to_have_text("SECRET//ALPHA")  # still our page, still marked
            assert page.url == dataset_url, name
            assert page.get_by_label("Images (JPEG, PNG, TIFF, WebP)").evaluate("(input) => input.files.length") == 1
            if name == "413":
                page.screenshot(path=str(artifacts / "datasets-upload-failed.png"), full_page=True)
            page.unroute("**/import")

        # Nothing was lost: the same files, sent again to the real server, are imported.
        page.get_by_role("button", name="Import").click()
        expect(page.locator(".messages")).to_contain_text("Imported 1 image(s) into harbour survey.")
        context.close()
        browser.close()

    assert not csp_violations, csp_violations
    assert list(Item.objects.filter(dataset=dataset).values_list("name", flat=True)) == ["harbour-north.jpg"]
