"""Shared personas and database helpers. Personas are real users created through the real actions."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management.color import no_style
from django.db import connection, transaction
from django.test.utils import setup_databases, teardown_databases

from appliance.auditlog.triggers import install_sql, remove_sql

# A password that satisfies policies/security.toml; tests never reuse it outside the test database.
STRONG_PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture(autouse=True)
def isolated_vault(settings, tmp_path_factory) -> None:
    """Every test gets a KEK and a blob folder of its own (development mode generates the KEK on first use), so
    no test reads another's blobs and a scan of the blob folder sees only this test's files."""
    root = tmp_path_factory.mktemp("vault")
    settings.VAULT_PROVIDER = "file"
    settings.VAULT_PKCS11 = None
    settings.VAULT_KEK_FILE = root / "keys" / "vault-kek"
    settings.VAULT_BLOB_DIR = root / "blobs"


@functools.cache
def strong_password_hash() -> str:
    """The real PBKDF2 hash of STRONG_PASSWORD, computed once: at the policy's 1.2M rounds each hash costs ~1 s."""
    return make_password(STRONG_PASSWORD)


def _make_user(username: str, roles: list[str], clearance: str, compartments: list[str] | None = None):
    from appliance.accounts.models import User

    user = User(username=username, roles=roles, clearance=clearance, compartments=compartments or [])
    user.password = strong_password_hash()
    user.save()
    return user


@pytest.fixture
def analyst(db):
    """An analyst cleared SECRET with compartment ALPHA."""
    return _make_user("ana", ["analyst"], "SECRET", ["ALPHA"])


@pytest.fixture
def reviewer(db):
    return _make_user("rev", ["reviewer"], "SECRET", ["ALPHA"])


@pytest.fixture
def manager(db):
    return _make_user("man", ["manager"], "TOP SECRET", ["ALPHA", "BRAVO"])


@pytest.fixture
def admin_user(db):
    return _make_user("adm", ["admin"], "SECRET")


@pytest.fixture
def auditor(db):
    return _make_user("aud", ["auditor"], "UNCLASSIFIED")


@pytest.fixture
def outsider(db):
    """Signed in, but cleared only UNCLASSIFIED with no compartments and no memberships."""
    return _make_user("out", ["analyst"], "UNCLASSIFIED")


def flush_everything() -> None:
    """Empty every table, audit tables included, by lifting the append-only triggers inside one transaction.

    Only tests that must commit (threads, several connections) need this; the triggers are back in place before
    the transaction commits, so no other test ever runs without them.
    """
    vendor = connection.vendor
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in remove_sql(vendor):
            cursor.execute(statement)
        for statement in connection.ops.sql_flush(no_style(), tables, allow_cascade=True):
            cursor.execute(statement)
        for statement in install_sql(vendor):
            cursor.execute(statement)


def _is_test_database() -> bool:
    return "test" in str(connection.settings_dict["NAME"]).rsplit("/", 1)[-1]


@pytest.fixture(scope="session")
def committing_database(django_db_setup, django_db_blocker) -> Iterator[None]:
    """The test database, made here when no test of this run asked pytest-django for one.

    pytest-django creates the test database only for the aliases its `django_db` markers name; a run of nothing
    but committing tests (which cannot use the marker: its transaction would hide their writes from other
    connections) would otherwise find the real database configured.
    """
    with django_db_blocker.unblock():
        if _is_test_database():
            yield
            return
        databases = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        yield
    finally:
        with django_db_blocker.unblock():
            teardown_databases(databases, verbosity=0)


@pytest.fixture
def committed_db(committing_database, django_db_blocker) -> Iterator[None]:
    """A database whose writes really commit (for threads and several connections); emptied afterwards."""
    with django_db_blocker.unblock():
        name = str(connection.settings_dict["NAME"])
        if not _is_test_database():
            pytest.fail(f"refusing to commit to {name!r}: not a test database")
        try:
            yield
        finally:
            flush_everything()


def needs_postgres() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL: run with DATABASE_URL=postgres://..."
    )


def sign_in(client, user) -> None:
    """Put `client` in the state a completed sign-in leaves (session timestamps included), without the forms.

    Tests of the sign-in flow itself go through the real forms; everything else starts signed in.
    """
    client.force_login(user)
    session = client.session
    now = time.time()
    session["auth_time"] = now
    session["last_seen"] = now
    session["audit_session"] = f"test-{user.username}"
    session.save()
