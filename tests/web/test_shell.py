"""The page shell: classification banners from policy on every page, identity, a strict CSP, no external URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from appliance.access.policy import get_policy
from tests.conftest import sign_in

ROOT = Path(__file__).resolve().parents[2]
SERVED = [p for p in (ROOT / "appliance").rglob("*") if p.suffix in {".html", ".js", ".css"} and p.is_file()]


def test_home_carries_the_banner_top_and_bottom_and_the_identity(client, analyst):
    sign_in(client, analyst)
    response = client.get(reverse("web:home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="banner level-0"') == 2  # page level UNCLASSIFIED: nothing classified shown
    assert 'data-testid="banner-top"' in html
    assert 'data-testid="banner-bottom"' in html
    assert "ana" in html
    assert "cleared SECRET" in html


def test_banner_colours_come_from_the_classification_policy(client):
    response = client.get(reverse("web:banner-css"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    css = response.content.decode()
    for level in get_policy().classification.levels:
        assert f".banner.level-{level.rank} {{ background: {level.background}; color: {level.foreground}; }}" in css


def test_home_offers_what_the_policy_grants(client, admin_user, auditor):
    sign_in(client, auditor)
    auditor_home = client.get(reverse("web:home")).content.decode()
    assert "Audit log" in auditor_home
    assert "Users" not in auditor_home
    client.logout()
    sign_in(client, admin_user)
    admin_home = client.get(reverse("web:home")).content.decode()
    assert "Users" in admin_home
    assert "Audit log" not in admin_home


def test_every_response_carries_a_strict_content_security_policy(client):
    """V-222602: no inline script or style can run; nothing loads from another origin."""
    response = client.get(reverse("web:banner-css"))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", SERVED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_served_file_has_inline_script_or_style(path):
    text = path.read_text()
    if path.suffix == ".html":
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script> (the CSP forbids it)"
        assert "<style" not in text, "inline <style> (the CSP forbids it)"
        assert not re.search(r"\sstyle\s*=", text), "style attribute (the CSP forbids it)"
        assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler (the CSP forbids it)"


@pytest.mark.parametrize("path", SERVED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_served_file_reaches_outside_the_machine(path):
    """Nothing in a template or asset points at another host: the enclave has no internet."""
    text = path.read_text()
    assert not re.search(r"(src|href|action)\s*=\s*[\"']?\s*(https?:)?//", text)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", text)
    assert not re.search(r"@import\s+[\"']?(https?:)?//", text)


def test_development_static_files_are_served(client):
    response = client.get("/static/web/appliance.css")
    assert response.status_code == 200
    assert b".banner" in b"".join(response.streaming_content)
