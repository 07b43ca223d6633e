"""Searching the audit log (page and API): filters narrow, bad filters are a 400 naming the parameter, pages are
keyset pages on `seq` (no duplicate, no skip, no OFFSET), and every search is itself recorded.

STIG: V-222487 (review audit records), V-222488 (filter audit records on selectable criteria), V-222500 (the
read of audit information is itself accountable).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from appliance.auditlog.selectors import AuditFilters, page_queryset, search_records
from tests.conftest import sign_in

PAGE = reverse("auditlog:search")
API = reverse("auditlog-api:records")


@pytest.fixture
def varied(db) -> None:
    """Records that differ in one field at a time, on three days of 2021."""
    days = ["2021-05-01 10:00:00Z", "2021-05-02 10:00:00Z", "2021-05-03 10:00:00Z"]
    with time_machine.travel(days[0], tick=False):
        record(action="auth.login", actor="alice", object_type="session", object_id="s1")
        record(action="auth.login.failed", actor="bob", outcome="denied")
    with time_machine.travel(days[1], tick=False):
        record(action="dataset.create", actor="alice", object_type="dataset", object_id="7", label="SECRET//ALPHA")
        record(action="dataset.view", actor="carol", object_type="dataset", object_id="7", label="SECRET//ALPHA")
    with time_machine.travel(days[2], tick=False):
        record(action="dataset.view", actor="carol", object_type="dataset", object_id="8", label="UNCLASSIFIED")
        record(action="key.rotate", actor="dave", outcome="error")


def _api_actions(client, **params) -> list[str]:
    response = client.get(API, params)
    assert response.status_code == 200, response.content
    return [row["action"] for row in response.json()["results"]]


def _page_actions(client, **params) -> list[str]:
    response = client.get(PAGE, params)
    assert response.status_code == 200, response.content.decode()[:2000]
    return [row.action for row in response.context["rows"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor": "alice"}, ["dataset.create", "auth.login"]),
        ({"action": "dataset.view"}, ["dataset.view", "dataset.view"]),
        ({"action": "auth.*"}, ["auth.login.failed", "auth.login"]),
        ({"object_type": "dataset", "object_id": "7"}, ["dataset.view", "dataset.create"]),
        ({"outcome": "denied"}, ["auth.login.failed"]),
        ({"outcome": "error"}, ["key.rotate"]),
        ({"label": "SECRET//ALPHA"}, ["dataset.view", "dataset.create"]),
        ({"from": "2021-05-02T00:00:00Z", "to": "2021-05-03T00:00:00Z"}, ["dataset.view", "dataset.create"]),
        ({"from": "2021-05-03T00:00:00", "actor": "carol"}, ["dataset.view"]),  # no offset: read as UTC
        ({"to": "2021-05-02T10:00:00Z"}, ["auth.login.failed", "auth.login"]),  # `to` is exclusive
        ({"actor": "carol", "object_id": "8", "label": "UNCLASSIFIED"}, ["dataset.view"]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters_narrow_the_results(client, auditor, varied, params, expected):
    sign_in(client, auditor)
    assert _api_actions(client, **params) == expected
    assert _page_actions(client, **params) == expected


def test_the_page_ignores_the_empty_fields_a_submitted_form_carries(client, auditor, varied):
    sign_in(client, auditor)
    empty = dict.fromkeys(("from", "to", "action", "object_type", "object_id", "outcome", "label"), "")
    assert _page_actions(client, actor="bob", **empty) == ["auth.login.failed"]


def test_the_page_shows_the_columns_an_auditor_reviews(client, auditor, varied):
    sign_in(client, auditor)
    html = client.get(PAGE, {"actor": "alice", "action": "dataset.create"}).content.decode()
    for text in ("2021-05-02 10:00:00", "alice", "dataset.create", "dataset 7", "SECRET//ALPHA", ">ok<"):
        assert text in html
    seq = AuditRecord.objects.get(action="dataset.create").seq
    assert f'href="{reverse("auditlog:detail", args=[seq])}"' in html


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2021-13-45"}, "to"),
        ({"from": "2021-05-03T00:00:00Z", "to": "2021-05-02T00:00:00Z"}, "to"),
        ({"outcome": "maybe"}, "outcome"),
        ({"action": "DROP TABLE"}, "action"),
        ({"actor": "x" * 151}, "actor"),
        ({"before": "-1"}, "before"),
        ({"before": "ten"}, "before"),
        ({"after": "1", "before": "5"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"page": "2"}, "page"),  # no offset pagination, and an unknown filter is never silently ignored
        ({"offset": "100"}, "offset"),
    ],
)
def test_bad_filters_are_a_400_that_names_the_parameter(client, auditor, varied, params, parameter):
    sign_in(client, auditor)
    api = client.get(API, params)
    assert api.status_code == 400
    assert parameter in api.json()
    page = client.get(PAGE, params)
    assert page.status_code == 400
    problems = page.context["problems"]
    assert any(problem.startswith(f"{parameter}: ") for problem in problems), problems
    assert f"{parameter}: " in page.content.decode()
    assert not AuditRecord.objects.filter(action="audit.search")  # nothing was searched


def test_a_repeated_parameter_is_refused_not_guessed(client, auditor, varied):
    sign_in(client, auditor)
    response = client.get(f"{API}?actor=alice&actor=bob")
    assert response.status_code == 400
    assert "actor" in response.json()


def test_every_search_is_recorded_with_its_filters(client, auditor, varied):
    sign_in(client, auditor)
    client.get(API, {"actor": "alice", "from": "2021-05-01T00:00:00Z", "limit": "5"})
    client.get(PAGE, {"outcome": "denied", "action": "auth.*"})
    bodies = [json.loads(r.canonical) for r in AuditRecord.objects.filter(action="audit.search").order_by("seq")]
    assert [(b["actor"], b["outcome"], b["details"]["filters"]) for b in bodies] == [
        ("aud", "ok", {"actor": "alice", "from": "2021-05-01T00:00:00Z"}),
        ("aud", "ok", {"action": "auth.*", "outcome": "denied"}),
    ]
    assert [b["details"]["returned"] for b in bodies] == [2, 1]
    assert [b["component"] for b in bodies] == ["api", "web"]


@pytest.fixture
def fifty(db) -> list[int]:
    """53 records of one action, interleaved with noise that the filter must skip, and their seqs."""
    seqs = []
    for index in range(53):
        seqs.append(record(action="test.page", object_id=str(index)).seq)
        if index % 5 == 0:
            record(action="test.noise")
    return seqs


def test_api_pages_cover_every_record_once_newest_first(client, auditor, fifty):
    sign_in(client, auditor)
    seen: list[int] = []
    cursor: dict[str, int] = {}
    pages = 0
    while True:
        body = client.get(API, {"action": "test.page", "limit": 10, **cursor}).json()
        seen += [row["seq"] for row in body["results"]]
        pages += 1
        if body["older_before"] is None:
            break
        cursor = {"before": body["older_before"]}
    assert pages == 6
    assert seen == sorted(fifty, reverse=True)  # no duplicate, no skip, newest first

    oldest = client.get(API, {"action": "test.page", "limit": 10, "before": seen[-1] + 1}).json()
    back: list[int] = [row["seq"] for row in oldest["results"]]
    assert back == [seen[-1]]
    cursor = {"after": oldest["newer_after"]}
    while True:
        body = client.get(API, {"action": "test.page", "limit": 10, **cursor}).json()
        back = [row["seq"] for row in body["results"]] + back
        if body["newer_after"] is None:
            break
        cursor = {"after": body["newer_after"]}
    assert back == seen  # walking back with `after` gives the same records


def test_page_links_walk_older_and_newer_without_gaps(client, auditor, fifty):
    sign_in(client, auditor)
    seen: list[int] = []
    url = f"{PAGE}?action=test.page&limit=20"
    first_page = None
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += [row.seq for row in response.context["rows"]]
        first_page = first_page or response
        assert "offset" not in url
        assert "page=" not in url
        url = response.context["older_url"]
        if url:
            assert "action=test.page" in url
            assert "before=" in url
    assert seen == sorted(fifty, reverse=True)
    assert first_page.context["newer_url"] == ""  # the newest page has no newer page
    last = client.get(f"{PAGE}?action=test.page&limit=20&before={seen[19]}")
    newer = last.context["newer_url"]
    assert "after=" in newer
    assert [row.seq for row in client.get(newer).context["rows"]] == seen[:20]


def test_a_page_is_a_seq_range_with_a_limit_never_an_offset():
    """Page 10,000 costs what page 1 costs: `seq < cursor ORDER BY seq DESC LIMIT n`, found by the primary key."""
    filters = AuditFilters(action="test.page")
    for queryset in (
        page_queryset(filters, limit=50),
        page_queryset(filters, before=950_000, limit=50),
        page_queryset(filters, after=950_000, limit=50),
    ):
        sql = str(queryset.query).upper()
        assert "OFFSET" not in sql
        assert "LIMIT 51" in sql
    assert '"SEQ" < 950000' in str(page_queryset(filters, before=950_000).query).upper()
    assert '"SEQ" > 950000' in str(page_queryset(filters, after=950_000).query).upper()


def test_deep_and_shallow_pages_run_the_same_queries(auditor, fifty):
    def queries(**cursor: int) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            search_records(AuditFilters(action="test.page"), limit=10, **cursor)
        return [q["sql"] for q in captured.captured_queries]

    first, deep = queries(), queries(before=fifty[5])
    assert len(first) <= 2
    assert len(deep) <= 2
    for sql in first + deep:
        assert "OFFSET" not in sql.upper()


def test_time_filters_are_utc_whatever_offset_is_given(client, auditor, varied):
    sign_in(client, auditor)
    # 12:00+02:00 is 10:00 UTC: the record at 10:00 UTC on May 2nd is included by `from`.
    assert _api_actions(client, **{"from": "2021-05-02T12:00:00+02:00", "to": "2021-05-02T10:00:01Z"}) == [
        "dataset.view",
        "dataset.create",
    ]
    assert datetime(2021, 5, 2, 10, tzinfo=UTC) == AuditRecord.objects.get(action="dataset.create").time
