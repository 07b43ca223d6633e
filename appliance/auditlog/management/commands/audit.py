"""`manage.py audit verify`: recompute every leaf hash and check the sequence; exit non-zero naming the record."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.auditlog.verification import verify_log


class Command(BaseCommand):
    help = "Audit log tools. 'verify' recomputes every leaf hash and checks that the sequence is dense."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("verify", help="check every record of the audit log")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            result = verify_log(progress=lambda n: self.stderr.write(f"  {n} records checked"))
            if not result.ok:
                raise CommandError(f"audit log verification FAILED at record {result.bad_seq}: {result.problem}")
            self.stdout.write(f"audit log OK: {result.checked} records, sequence dense, every leaf hash matches")
