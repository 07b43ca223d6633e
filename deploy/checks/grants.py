"""Run inside the converged target as the postgres superuser: the roles must hold exactly what the plan grants.

    python - PLAN.sql PORT < grants.py

PLAN.sql is `manage.py audit_db grants` output for the installed schema. Every table's owner and the runtime
role's privileges on it must equal the plan (nothing missing, nothing more); the runtime role must not be able to
create objects in the schema, own anything, or be a superuser. Exit 1 with the differences otherwise.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import psycopg

OWNER, MIGRATOR, RUNTIME = "appliance_audit_owner", "appliance_migrator", "appliance"
TABLE = r'"public"\."(?P<table>[^"]+)"'


def planned(plan: str) -> tuple[dict[str, set[str]], dict[str, str]]:
    grants: dict[str, set[str]] = defaultdict(set)
    owners: dict[str, str] = {}
    for statement in plan.split(";\n"):
        statement = statement.strip()
        if match := re.fullmatch(rf'GRANT (?P<privs>[A-Z, ]+) ON {TABLE} TO "{RUNTIME}"', statement):
            grants[match["table"]] |= {p.strip() for p in match["privs"].split(",")}
        elif match := re.fullmatch(rf'ALTER TABLE {TABLE} OWNER TO "(?P<owner>[^"]+)"', statement):
            owners[match["table"]] = match["owner"]
    return grants, owners


def main() -> int:
    plan_path, port = Path(sys.argv[1]), int(sys.argv[2])
    expected_grants, expected_owners = planned(plan_path.read_text())
    problems: list[str] = []
    with psycopg.connect(host="/var/run/postgresql", port=port, dbname="appliance", user="postgres") as db:
        tables: dict[str, str] = dict(db.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchall())  # fmt: skip
        actual_grants: dict[str, set[str]] = defaultdict(set)
        for table, privilege in db.execute(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = %s AND table_schema = 'public'", [RUNTIME]
        ):  # fmt: skip
            actual_grants[table].add(privilege)
        audit_tables = sorted(t for t in tables if t.startswith("auditlog_"))
        if not audit_tables or set(tables) != set(expected_owners):
            problems.append(f"the plan covers {len(expected_owners)} tables, the schema holds {len(tables)}")
        for table, owner in sorted(tables.items()):
            if expected_owners.get(table) != owner:
                problems.append(f"{table} is owned by {owner}, the plan says {expected_owners.get(table)}")
            if actual_grants.get(table, set()) != expected_grants.get(table, set()):
                problems.append(
                    f"{RUNTIME} holds {sorted(actual_grants.get(table, set()))} on {table}, "
                    f"the plan grants {sorted(expected_grants.get(table, set()))}"
                )
        for table in audit_tables:
            wider = actual_grants.get(table, set()) & {"UPDATE", "TRUNCATE", "REFERENCES", "TRIGGER"}
            if wider or expected_owners.get(table) != OWNER:
                problems.append(f"audit table {table}: owner {tables[table]}, runtime extra privileges {sorted(wider)}")
        role = db.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, has_schema_privilege(%s, 'public', 'CREATE'),"
            " pg_has_role(%s, %s, 'MEMBER'), pg_has_role(%s, %s, 'MEMBER'),"
            " (SELECT rolcanlogin FROM pg_roles WHERE rolname = %s)"
            " FROM pg_roles WHERE rolname = %s",
            [RUNTIME, RUNTIME, OWNER, RUNTIME, MIGRATOR, OWNER, RUNTIME],
        ).fetchone()
        if role != (False, False, False, False, False, False, False):
            problems.append(
                "runtime role: superuser, createrole, createdb, CREATE on schema, member of owner, member of "
                f"migrator, owner can log in = {role}; all must be false"
            )
    for problem in problems:
        print(f"grants: {problem}", file=sys.stderr)
    if not problems:
        print(f"grants: {len(tables)} tables ({len(audit_tables)} audit) hold exactly the planned owners and grants")
    return 1 if problems else 0


sys.exit(main())
