"""`manage.py audit_db grants|storage`: the database side of protecting the audit log.

`grants --owner R --migrator R --runtime R [--apply]` prints (or, with --apply, runs in one transaction as the
connecting superuser) the PostgreSQL grants of `appliance.auditlog.grants`. `storage [--budget-mb N]` measures the
audit tables against the configured budget and alerts at 75% (`appliance.auditlog.storage`); it exits 1 at or
above the warning threshold so that a systemd timer or cron job shows the failure too.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from appliance.auditlog.grants import GrantError, Roles, inspect, missing_roles, plan
from appliance.auditlog.storage import check_audit_storage


class Command(BaseCommand):
    help = "Audit tables in the database: PostgreSQL grants that keep them append-only; their storage budget."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        grants = sub.add_parser("grants", help="print (or --apply) the roles' grants on the audit and app tables")
        grants.add_argument("--owner", required=True, help="NOLOGIN role that owns the audit tables")
        grants.add_argument("--migrator", required=True, help="role that runs migrations and owns the app tables")
        grants.add_argument("--runtime", required=True, help="role the web and worker processes connect as")
        grants.add_argument("--apply", action="store_true", help="run the statements instead of printing them")
        storage = sub.add_parser("storage", help="measure the audit tables against their budget; alert at 75%%")
        storage.add_argument("--budget-mb", type=int, help="override the configured audit.storage_budget_mb")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "grants":
            self._grants(options)
        else:
            self._storage(options)

    def _grants(self, options: dict[str, Any]) -> None:
        try:
            roles = Roles(owner=options["owner"], migrator=options["migrator"], runtime=options["runtime"])
            statements = plan(roles, inspect(connection))
        except GrantError as exc:
            raise CommandError(str(exc)) from exc
        if not options["apply"]:
            self.stdout.write("".join(f"{statement};\n" for statement in statements))
            return
        missing = missing_roles(connection, roles)
        if missing:
            raise CommandError(
                f"role(s) {', '.join(missing)} do not exist; create them first (see docs/audit-storage.md)"
            )
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(
            f"applied {len(statements)} statements: audit tables owned by {roles.owner}, "
            f"{roles.runtime} may only SELECT and INSERT them"
        )

    def _storage(self, options: dict[str, Any]) -> None:
        budget = options.get("budget_mb")
        if budget is not None and budget < 1:
            raise CommandError("--budget-mb must be at least 1")
        status = check_audit_storage(budget_bytes=budget * 1024 * 1024 if budget else None)
        line = f"audit storage: {status.used_bytes} of {status.budget_bytes} bytes ({status.percent}%), {status.level}"
        if status.level != "ok":
            raise CommandError(line)
        self.stdout.write(line)
