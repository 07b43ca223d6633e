"""PostgreSQL roles and grants that keep the audit tables append-only for the appliance itself (AU-9, V-222481).

The triggers refuse UPDATE, DELETE and TRUNCATE, but whoever owns a table may drop its triggers. So on PostgreSQL
the audit tables belong to a role of their own that nobody logs in as, and the role the appliance runs as holds
only INSERT and SELECT on them: even with the triggers gone it cannot change or remove a record. Three roles:

- owner (NOLOGIN): owns the audit tables and the trigger function; used by nobody at run time;
- migrator: owns every other table, runs `migrate`, and is a member of the owner so that a migration can still
  alter an audit table; its credential is used only during installs and upgrades, never by the web or workers;
- runtime: what gunicorn and the workers connect as; SELECT/INSERT/UPDATE/DELETE on the app tables, SELECT and
  INSERT only on the audit tables (plus DELETE on the staged records, which sequencing moves into the log),
  nothing on the schema itself.

This module only plans the SQL (`plan`) from what the schema holds (`inspect`); `manage.py audit_db grants`
prints or applies it. It never creates roles or sets passwords: the deployment does, and keeps them out of here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

from appliance.auditlog.triggers import APPEND_ONLY_TABLES, NO_UPDATE_FUNCTION, NO_UPDATE_TABLES

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TRIGGER_FUNCTION = "auditlog_refuse_change()"
AUDIT_PREFIX = "auditlog_"
MIGRATIONS_TABLE = "django_migrations"


class GrantError(ValueError):
    """The roles or the schema do not allow a safe plan; the message says what to fix."""


@dataclass(frozen=True)
class Schema:
    """What the plan is made from: table names and which sequences belong to which table."""

    tables: Sequence[str]
    sequences: dict[str, str]  # sequence name -> owning table name ("" when free-standing)
    name: str = "public"


@dataclass(frozen=True)
class Roles:
    owner: str
    migrator: str
    runtime: str

    def __post_init__(self) -> None:
        names = (self.owner, self.migrator, self.runtime)
        for name in names:
            if not _ROLE_NAME.match(name):
                raise GrantError(f"role name {name!r} must be a lower-case SQL identifier (letters, digits, _)")
        if len(set(names)) != 3:
            raise GrantError("the owner, migrator and runtime roles must be three different roles")


def _q(identifier: str) -> str:
    """Quote an identifier. Names come from the catalog or from `_ROLE_NAME`; quoting keeps odd ones harmless."""
    return '"' + identifier.replace('"', '""') + '"'


def audit_tables(tables: Iterable[str]) -> list[str]:
    """The append-only tables, plus any other auditlog_* table that a later migration adds."""
    present = set(tables)
    missing = [t for t in APPEND_ONLY_TABLES if t not in present]
    if missing:
        raise GrantError(f"audit table(s) {', '.join(missing)} do not exist yet: run `manage.py migrate` first")
    return sorted(set(APPEND_ONLY_TABLES) | {t for t in present if t.startswith(AUDIT_PREFIX)})


def plan(roles: Roles, schema: Schema) -> list[str]:
    """The statements, in order, that give the roles exactly their share. Idempotent: run it after every migrate."""
    audit = audit_tables(schema.tables)
    app = sorted(t for t in schema.tables if t not in audit)
    ns = _q(schema.name)
    owner, migrator, runtime = _q(roles.owner), _q(roles.migrator), _q(roles.runtime)
    audit_sequences = sorted(s for s, table in schema.sequences.items() if table in audit)
    app_sequences = sorted(s for s, table in schema.sequences.items() if table not in audit)
    sql = [
        # The migrator acts as the owner when a migration alters an audit table; the runtime role never does.
        f"GRANT {owner} TO {migrator}",
        f"REVOKE {owner} FROM {runtime}",
        f"REVOKE {migrator} FROM {runtime}",
        f"REVOKE CREATE ON SCHEMA {ns} FROM PUBLIC",
        f"GRANT USAGE, CREATE ON SCHEMA {ns} TO {migrator}",
        f"REVOKE CREATE ON SCHEMA {ns} FROM {runtime}",
        f"GRANT USAGE ON SCHEMA {ns} TO {runtime}",
    ]
    for table in audit:
        name = f"{ns}.{_q(table)}"
        sql += [
            f"ALTER TABLE {name} OWNER TO {owner}",
            f"REVOKE ALL ON {name} FROM PUBLIC",
            f"REVOKE ALL ON {name} FROM {runtime}",
            f"REVOKE ALL ON {name} FROM {migrator}",
            # Staged records are deleted as they are sequenced (never changed: a trigger refuses UPDATE).
            f"GRANT SELECT, INSERT, DELETE ON {name} TO {runtime}"
            if table in NO_UPDATE_TABLES
            else f"GRANT SELECT, INSERT ON {name} TO {runtime}",
        ]
    for sequence in audit_sequences:
        name = f"{ns}.{_q(sequence)}"
        sql += [f"REVOKE ALL ON SEQUENCE {name} FROM {runtime}", f"GRANT USAGE ON SEQUENCE {name} TO {runtime}"]
    sql.append(f"ALTER FUNCTION {ns}.{TRIGGER_FUNCTION} OWNER TO {owner}")
    sql.append(f"ALTER FUNCTION {ns}.{NO_UPDATE_FUNCTION} OWNER TO {owner}")
    for table in app:
        name = f"{ns}.{_q(table)}"
        sql += [f"ALTER TABLE {name} OWNER TO {migrator}", f"REVOKE ALL ON {name} FROM PUBLIC"]
        if table == MIGRATIONS_TABLE:  # the runtime reads which migrations ran (start-up checks), never writes
            sql.append(f"GRANT SELECT ON {name} TO {runtime}")
        else:
            sql.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {runtime}")
    for sequence in app_sequences:
        sql.append(f"GRANT USAGE, SELECT ON SEQUENCE {ns}.{_q(sequence)} TO {runtime}")
    # Tables that later migrations create get the app share at once. A new auditlog_* table too, until this plan
    # runs again and narrows it: hence "run after every migrate" (the Ansible role does).
    sql += [
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {migrator} IN SCHEMA {ns} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {runtime}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {migrator} IN SCHEMA {ns} GRANT USAGE, SELECT ON SEQUENCES TO {runtime}",
    ]
    return sql


def inspect(connection: BaseDatabaseWrapper) -> Schema:
    """Read the tables and sequences of the connection's current schema from the PostgreSQL catalog."""
    if connection.vendor != "postgresql":
        raise GrantError("roles and grants apply to PostgreSQL only; SQLite has no roles (its file mode is the guard)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        row = cursor.fetchone()
        schema = str(row[0]) if row else "public"
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            [schema],
        )
        tables = [str(name) for (name,) in cursor.fetchall()]
        cursor.execute(
            "SELECT s.relname, COALESCE(t.relname, '') FROM pg_class s "
            "JOIN pg_namespace n ON n.oid = s.relnamespace "
            "LEFT JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
            "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
            "LEFT JOIN pg_class t ON t.oid = d.refobjid "
            "WHERE n.nspname = %s AND s.relkind = 'S' ORDER BY s.relname",
            [schema],
        )
        sequences = {str(name): str(table) for name, table in cursor.fetchall()}
    return Schema(tables=tables, sequences=sequences, name=schema)


def missing_roles(connection: BaseDatabaseWrapper, roles: Roles) -> list[str]:
    """Roles that do not exist in the cluster (the deployment creates them, with their passwords)."""
    names = [roles.owner, roles.migrator, roles.runtime]
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [names])
        present = {str(name) for (name,) in cursor.fetchall()}
    return [name for name in names if name not in present]
