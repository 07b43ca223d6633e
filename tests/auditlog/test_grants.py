"""On PostgreSQL the role the appliance runs as may only append to and read the audit tables.

STIG: V-222481 and AU-9 (protect audit information from unauthorized modification and deletion), AU-9(2) with
the export to other media documented in docs/audit-storage.md. The plan is checked on every database; the grants
themselves on PostgreSQL, with real roles and a real connection as the runtime role, with the append-only
triggers dropped so that only the grants stand between it and the records.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from appliance.auditlog.grants import GrantError, Roles, Schema, plan
from appliance.auditlog.triggers import APPEND_ONLY_TABLES, install_sql, remove_sql
from tests.conftest import needs_postgres

SCHEMA = Schema(
    tables=["auditlog_auditcheckpoint", "auditlog_auditrecord", "auditlog_future", "django_migrations",
            "django_session", "datasets_dataset"],
    sequences={"datasets_dataset_id_seq": "datasets_dataset", "auditlog_future_id_seq": "auditlog_future"},
)  # fmt: skip
ROLES = Roles(owner="app_audit_owner", migrator="app_migrator", runtime="app_runtime")


def _grants_to_runtime(statements: list[str], table: str) -> set[str]:
    granted: set[str] = set()
    for statement in statements:
        match = re.fullmatch(rf'GRANT (.+) ON "public"\."{table}" TO "app_runtime"', statement)
        if match:
            granted |= {p.strip() for p in match.group(1).split(",")}
    return granted


def test_the_plan_gives_the_runtime_role_only_select_and_insert_on_every_audit_table():
    """AU-9: no UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER on auditlog_* tables, a later one included."""
    statements = plan(ROLES, SCHEMA)
    for table in ["auditlog_auditrecord", "auditlog_auditcheckpoint", "auditlog_future"]:
        assert _grants_to_runtime(statements, table) == {"SELECT", "INSERT"}
        assert f'ALTER TABLE "public"."{table}" OWNER TO "app_audit_owner"' in statements
    assert _grants_to_runtime(statements, "django_session") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert _grants_to_runtime(statements, "django_migrations") == {"SELECT"}
    assert 'GRANT USAGE ON SEQUENCE "public"."auditlog_future_id_seq" TO "app_runtime"' in statements
    assert not any(s.startswith('GRANT "app_audit_owner" TO "app_runtime"') for s in statements)


@pytest.mark.django_db
def test_the_plan_refuses_unsafe_roles_and_an_unmigrated_schema():
    """AU-9: the runtime role must not double as the owner; a plan needs the audit tables to exist. (Marked
    django_db so that pytest-django sets up the test database the committing tests below need.)"""
    with pytest.raises(GrantError, match="three different roles"):
        Roles(owner="app", migrator="app_migrator", runtime="app")
    with pytest.raises(GrantError, match="lower-case SQL identifier"):
        Roles(owner='x"; DROP TABLE y; --', migrator="m", runtime="r")
    with pytest.raises(GrantError, match="migrate"):
        plan(ROLES, Schema(tables=["django_session"], sequences={}))


@dataclass(frozen=True)
class Cluster:
    roles: Roles
    dbname: str
    host: str
    port: int

    def connect(self, role: str) -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, dbname=self.dbname, user=role, autocommit=True)


@pytest.fixture
def applied(committed_db) -> Iterator[Cluster]:
    """Three fresh h7_ roles, the grants applied with the real command, and everything undone afterwards."""
    suffix = uuid.uuid4().hex[:6]
    roles = Roles(owner=f"h7_owner_{suffix}", migrator=f"h7_migrator_{suffix}", runtime=f"h7_runtime_{suffix}")
    me = connection.settings_dict["USER"] or "postgres"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{roles.owner}" NOLOGIN')
        cursor.execute(f'CREATE ROLE "{roles.migrator}" LOGIN')
        cursor.execute(f'CREATE ROLE "{roles.runtime}" LOGIN')
    try:
        call_command(
            "audit_db", "grants", "--owner", roles.owner, "--migrator", roles.migrator, "--runtime", roles.runtime,
            "--apply",
        )  # fmt: skip
        yield Cluster(
            roles=roles,
            dbname=str(connection.settings_dict["NAME"]),
            host=str(connection.settings_dict["HOST"] or "127.0.0.1"),
            port=int(connection.settings_dict["PORT"] or 5432),
        )
    finally:
        with connection.cursor() as cursor:
            for statement in remove_sql("postgresql") + install_sql("postgresql"):  # as they were, whatever ran
                cursor.execute(statement)
            names = ", ".join(f'"{name}"' for name in (roles.owner, roles.migrator, roles.runtime))
            cursor.execute(f'REASSIGN OWNED BY {names} TO "{me}"')
            for name in (roles.migrator, roles.runtime, roles.owner):  # one at a time: the migrator's default
                cursor.execute(f'DROP OWNED BY "{name}"')  # privileges name the runtime role too
            for name in (roles.runtime, roles.migrator, roles.owner):
                cursor.execute(f'DROP ROLE "{name}"')


INSERT = (
    "INSERT INTO auditlog_auditrecord (seq, time, actor, action, outcome, object_type, object_id, label, "
    "request_id, canonical, leaf_hash) VALUES (%s, now(), 'r', 'probe', 'ok', '', '', '', '', '{}', %s)"
)


@needs_postgres()
def test_the_runtime_role_can_append_and_read_but_never_change_audit_rows(applied: Cluster):
    """V-222481/AU-9: as the runtime role, INSERT and SELECT work; UPDATE, DELETE and TRUNCATE fail for want of a
    privilege even after the table owner has dropped the append-only triggers; app tables stay writable."""
    with connection.cursor() as cursor:  # the owner drops the triggers: only the grants are left
        cursor.execute(f'SET ROLE "{applied.roles.owner}"')
        for statement in remove_sql("postgresql")[:-1]:  # the triggers, not the function (owned elsewhere too)
            cursor.execute(statement)
        cursor.execute("RESET ROLE")
    with applied.connect(applied.roles.runtime) as runtime:
        runtime.execute(INSERT, [10**12, b"\x00" * 32])
        assert runtime.execute("SELECT count(*) FROM auditlog_auditrecord WHERE seq = %s", [10**12]).fetchone() == (1,)
        for table in APPEND_ONLY_TABLES:
            changes = (f"UPDATE {table} SET time = now()", f"DELETE FROM {table}", f"TRUNCATE {table}")  # noqa: S608
            for statement in changes:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"permission denied for table {table}"):
                    runtime.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runtime.execute("DROP TABLE auditlog_auditrecord")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runtime.execute("CREATE TABLE h7_sneaky (x int)")
        runtime.execute("INSERT INTO django_session VALUES ('h7probe', 'x', now())")
        runtime.execute("UPDATE django_session SET session_data = 'y' WHERE session_key = 'h7probe'")
        runtime.execute("DELETE FROM django_session WHERE session_key = 'h7probe'")


@needs_postgres()
def test_tables_a_later_migration_creates_are_writable_by_the_runtime_role(applied: Cluster):
    """AU-9 keeps the app working: the migrator's new tables reach the runtime role by default privileges."""
    with applied.connect(applied.roles.migrator) as migrator:
        migrator.execute("CREATE TABLE h7_later (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, x int)")
    try:
        with applied.connect(applied.roles.runtime) as runtime:
            runtime.execute("INSERT INTO h7_later (x) VALUES (1)")
            runtime.execute("UPDATE h7_later SET x = 2")
    finally:
        with applied.connect(applied.roles.migrator) as migrator:
            migrator.execute("DROP TABLE h7_later")
