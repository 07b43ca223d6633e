"""SQL that makes the audit tables append-only, per database vendor; used by the migration and by tests.

The triggers are the second line of defence (the first is that no code path updates a record; on PostgreSQL the
runtime role also lacks the grants). What gets past them, such as a superuser dropping them, is caught by the
verifier against checkpoints held outside the appliance.
"""

from __future__ import annotations

APPEND_ONLY_TABLES = ("auditlog_auditrecord", "auditlog_auditcheckpoint")
# Staged records are deleted once sequenced, but never changed: a staged record is the action's record.
NO_UPDATE_TABLES = ("auditlog_auditstaged",)
NO_UPDATE_FUNCTION = "auditlog_refuse_update()"
MESSAGE = "audit records are append-only"


def install_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    if vendor == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for event in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
                )
        return statements
    if vendor == "postgresql":
        # No '%' anywhere (RAISE's own format placeholders included): the migration runs this through
        # schema_editor.execute(sql, params=()), where psycopg would take a '%' for a query parameter.
        statements.append(
            "CREATE OR REPLACE FUNCTION auditlog_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION USING MESSAGE = '{MESSAGE} (' || TG_OP || ' on ' || TG_TABLE_NAME || ')', "
            "ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in APPEND_ONLY_TABLES:
            statements.append(
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION auditlog_refuse_change()"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION auditlog_refuse_change()"
            )
        return statements
    raise NotImplementedError(f"no append-only triggers for database vendor {vendor!r}")


def remove_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    if vendor == "sqlite":
        for table in APPEND_ONLY_TABLES:
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_no_update",
                f"DROP TRIGGER IF EXISTS {table}_no_delete",
            ]
        return statements
    if vendor == "postgresql":
        for table in APPEND_ONLY_TABLES:
            statements += [
                f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}",
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            ]
        statements.append("DROP FUNCTION IF EXISTS auditlog_refuse_change()")
        return statements
    raise NotImplementedError(f"no append-only triggers for database vendor {vendor!r}")


def install_no_update_sql(vendor: str) -> list[str]:
    """Refuse UPDATE on the staging table. PostgreSQL gets a refusing function of its own, so that lifting the
    append-only triggers (tests, `flush_everything`) never touches this one."""
    statements: list[str] = []
    if vendor == "postgresql":
        statements.append(
            f"CREATE OR REPLACE FUNCTION {NO_UPDATE_FUNCTION} RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION USING MESSAGE = 'staged {MESSAGE} (' || TG_OP || ' on ' || TG_TABLE_NAME || ')', "
            "ERRCODE = 'insufficient_privilege'; END $$"
        )
    for table in NO_UPDATE_TABLES:
        if vendor == "sqlite":
            statements.append(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
        elif vendor == "postgresql":
            statements.append(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {NO_UPDATE_FUNCTION}"
            )
        else:
            raise NotImplementedError(f"no staging triggers for database vendor {vendor!r}")
    return statements


def remove_no_update_sql(vendor: str) -> list[str]:
    if vendor == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_update" for table in NO_UPDATE_TABLES]
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}" for table in NO_UPDATE_TABLES] + [
            f"DROP FUNCTION IF EXISTS {NO_UPDATE_FUNCTION}"
        ]
    raise NotImplementedError(f"no staging triggers for database vendor {vendor!r}")
