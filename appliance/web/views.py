"""Shell pages: home (one per role, built from what the policy grants) and the banner stylesheet."""

from __future__ import annotations

from django.contrib.staticfiles.views import serve as serve_static
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from appliance.access.decision import roles_grant
from appliance.access.markers import public, requires
from appliance.access.policy import get_policy

# Work areas that have a page already, by title: their card's heading links to it (built with format_html, so
# the home template renders it as it renders every title; the others stay plain text until their page exists).
SECTION_PAGES = {
    "Audit log": "auditlog:search",
    "Datasets": "datasets:list",
    "My datasets": "datasets:list",
    "Projects": "projects:list",
    "Review": "projects:list",
}

# What a home page offers, keyed by the permission that unlocks it; the policy decides who sees which.
HOME_SECTIONS = (
    ("user.view", "Users", "Manage accounts, roles, clearances and compartments."),
    ("audit.read", "Audit log", "Search, verify and export the tamper-evident audit log."),
    ("dataset.create", "Datasets", "Create datasets and manage who may see them."),
    ("dataset.view", "My datasets", "The datasets you are a member of and cleared for."),
    ("annotation.edit", "Projects", "Label the images of your projects: your queue, the canvas, your remarks."),
    ("annotation.review", "Review", "Accept or reject annotations."),
    ("key.manage", "Keys", "Key ceremonies and rotation."),
)


def _linked(title: str) -> str:
    page = SECTION_PAGES.get(title)
    return format_html('<a href="{}">{}</a>', reverse(page), title) if page else title


@require_GET
@requires("account.self")
def home(request: HttpRequest) -> HttpResponse:
    policy = get_policy()
    roles = list(request.user.roles)  # type: ignore[union-attr]
    sections = [
        {"title": _linked(title), "text": text}
        for permission, title, text in HOME_SECTIONS
        if roles_grant(policy, roles, permission)
    ]
    role_descriptions = [policy.roles[r].description for r in roles if r in policy.roles]
    return render(request, "web/home.html", {"sections": sections, "role_descriptions": role_descriptions})


@require_GET
@cache_control(max_age=300)
@public("the banner colours are needed to render the consent and login pages")
def banner_css(request: HttpRequest) -> HttpResponse:
    """The classification colours from policy as CSS classes, so no page needs an inline style (strict CSP)."""
    lines = [
        f".banner.level-{level.rank} {{ background: {level.background}; color: {level.foreground}; }}"
        for level in get_policy().classification.levels
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/css; charset=utf-8")


@require_GET
@public("development mode only: the vendored static assets (nginx serves them in production)")
def development_static(request: HttpRequest, path: str) -> HttpResponseBase:
    """Serve static files from the apps' folders when gunicorn runs without nginx (`make run`)."""
    return serve_static(request, path, insecure=True)
