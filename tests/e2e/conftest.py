"""Real-browser tests: the app served by pytest-django's live server, driven by Playwright with Debian's chromium.

The browser is Debian's chromium at /usr/bin/chromium (`.ci/run` installs it): Playwright's own browser download
is never used, because the appliance and its CI are offline. Without that binary the tests skip and say why.

The live server needs `transactional_db`, whose teardown empties every table with Django's flush; the audit
tables refuse that (append-only triggers; on PostgreSQL even an empty TRUNCATE fires them). So each test's data
is removed by `flush_everything()` first, the triggers are lifted for the flush that follows, and a module-scoped
fixture, torn down after it, puts them back. No test ever starts without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from appliance.auditlog.triggers import install_sql, remove_sql
from tests.conftest import flush_everything

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
# Offline and quiet: no sandbox (CI runs as root), no GPU, no QUIC, no first-run, no background calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _run(statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _reinstall_triggers() -> None:
    _run(remove_sql(connection.vendor) + install_sql(connection.vendor))


@pytest.fixture(scope="module")
def triggers_restored(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Torn down after each test's `transactional_db` flush: puts the append-only triggers back."""
    yield
    with django_db_blocker.unblock():
        _reinstall_triggers()


@pytest.fixture
def app_server(triggers_restored, live_server, transactional_db) -> Iterator[str]:
    """The live server's URL, on a test database that is emptied (audit tables included) when the test ends."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, as .ci/run does)"
        )
    _reinstall_triggers()
    try:
        yield live_server.url
    finally:
        flush_everything()
        _run(remove_sql(connection.vendor))  # for transactional_db's flush, next; `triggers_restored` reinstalls


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
