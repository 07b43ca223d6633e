"""Deny by default: every URL the appliance serves declares its guard, and the few public ones say why.

The walk covers the real URL map, nested includes and all, so a new view without `@requires`, `@public` or a DRF
`required_permission` + `PolicyPermission` fails here before it can ship; a new public view fails too until it is
added to PUBLIC below, where a reviewer sees it. The runtime test proves the middleware refuses an unmarked view
even if this walk were skipped.

STIG: V-222425 (enforce approved authorizations for logical access), V-222426 (access control over objects).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from appliance.access.decision import UnknownPermission, decide
from appliance.access.markers import AccessRule, rule_of
from appliance.accounts.models import User
from appliance.auditlog.models import AuditRecord
from tests.conftest import sign_in

# Every view reachable without sign-in, by URL name. Adding one is a security decision: it belongs in review.
PUBLIC = {
    "web:banner-css",
    "web:development-static",
    "accounts:consent",
    "accounts:login",
    "accounts:second-factor",
    "accounts:enrol-second-factor",
    "accounts:signed-out",
}


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(route, qualified name, callback) for every pattern, descending into every include."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        else:
            yield prefix + str(entry.pattern), f"{namespace}{entry.name or '(unnamed)'}", entry.callback


ROUTES = sorted(_walk(get_resolver().url_patterns))


def test_the_walk_sees_the_whole_url_map() -> None:
    """The walk itself must reach nested includes (page and API), or every other assertion here is hollow."""
    names = {name for _, name, _ in ROUTES}
    assert {"web:home", "datasets:list", "datasets:detail", "datasets-api:collection", "api:me"} <= names
    assert len(ROUTES) >= 10


@pytest.mark.parametrize(("route", "name", "callback"), [pytest.param(*r, id=r[1]) for r in ROUTES])
def test_every_url_declares_its_guard(route: str, name: str, callback: Callable[..., Any]) -> None:
    rule = rule_of(callback)
    assert isinstance(rule, AccessRule), f"{route} ({name}) declares no access rule: mark it @requires or @public"
    if rule.public:
        assert rule.why.strip(), f"{route} ({name}) is public without saying why"
        assert name in PUBLIC, f"{route} ({name}) is public but not listed in PUBLIC: a reviewer must see it"
    else:
        assert name not in PUBLIC, f"{route} ({name}) is listed as public but is guarded: update PUBLIC"
        try:
            decide(User(is_active=False), rule.permission)
        except UnknownPermission:
            pytest.fail(f"{route} ({name}) requires {rule.permission!r}, which the policy does not declare")


def test_the_public_list_names_only_real_urls() -> None:
    """A stale entry in PUBLIC would hide the next view that takes its name."""
    assert {name for _, name, _ in ROUTES} >= PUBLIC


@override_settings(ROOT_URLCONF="tests.access.unguarded_urls")
def test_the_middleware_refuses_an_unmarked_view_and_audits_it(db: None) -> None:
    """Even signed in with every role and the highest clearance, an unmarked view is a 404 and a denial record."""
    from appliance.access.policy import get_policy

    policy = get_policy()
    everyone = User.objects.create(
        username="everyone",
        roles=sorted(policy.roles),
        clearance=policy.classification.levels[-1].name,
        compartments=sorted(policy.classification.compartments),
    )
    signed_in, anonymous = Client(), Client()
    sign_in(signed_in, everyone)
    for client in (signed_in, anonymous):
        response = client.get("/unguarded")
        assert response.status_code == 404
        assert b"must never be served" not in response.content
    denials = [json.loads(r.canonical) for r in AuditRecord.objects.filter(action="access.denied")]
    assert len(denials) == 2  # signed in and anonymous alike
    for body in denials:
        assert body["outcome"] == "denied"
        assert body["details"]["gate"] == "unguarded view"
        assert body["details"]["path"] == "/unguarded"
    assert [body["actor"] for body in denials] == ["everyone", ""]
