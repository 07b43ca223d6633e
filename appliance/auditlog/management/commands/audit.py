"""`manage.py audit verify|export|checkpoint|rotate-key`: the operator's and auditor's audit-log tools.

- `verify [--trusted-checkpoint FILE]`: every record and every signed checkpoint (V-222507, V-222501/V-222502);
  exits non-zero naming the first bad record or checkpoint.
- `export OUT [--since SEQ]`: an audit bundle for `python -m audit verify` off the appliance (V-222481).
- `checkpoint`: sequence staged records, sign a checkpoint now if one is due, and check the audit storage budget
  (for a timer on a quiet appliance, whose tail would otherwise wait for the next append).
- `rotate-key`: a new audit signing key, announced in a checkpoint signed by the old and the new key; audited
  (`audit.key_rotated`, key ids only). The old public key stays known, so old checkpoints still verify.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.auditlog.actions import rotate_signing_key
from appliance.auditlog.checkpoints import CheckpointRefused, make_checkpoint
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.export import ExportError, export_bundle
from appliance.auditlog.sequencer import drain_staged
from appliance.auditlog.storage import check_audit_storage
from appliance.auditlog.verification import verify_log
from appliance.lib.config import ConfigError
from audit.bundle import BundleError, TrustedCheckpoint


def console_context() -> AuditContext:
    return AuditContext(component="cli", actor=f"os:{getpass.getuser()}")


class Command(BaseCommand):
    help = "Audit log tools: verify, export, checkpoint, rotate-key."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help="check every record and checkpoint of the audit log")
        verify.add_argument("--trusted-checkpoint", type=Path, help="a checkpoint saved by `python -m audit verify`")
        export = sub.add_parser("export", help="write an audit bundle for the offline verifier")
        export.add_argument("out", type=Path, help="a folder that does not exist yet")
        export.add_argument("--since", type=int, default=0, help="first record to include (default 0)")
        sub.add_parser("checkpoint", help="sign a checkpoint now if one is due")
        sub.add_parser("rotate-key", help="replace the audit signing key, announced by a checkpoint")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with audit_context(console_context()):
                getattr(self, "_" + options["subcommand"].replace("-", "_"))(options)
        except (ConfigError, CheckpointRefused, ExportError, BundleError) as exc:
            raise CommandError(str(exc)) from exc

    def _verify(self, options: dict[str, Any]) -> None:
        trusted = TrustedCheckpoint.load(options["trusted_checkpoint"]) if options["trusted_checkpoint"] else None
        drain_staged()  # every committed record in its place before it is checked
        result = verify_log(progress=lambda n: self.stderr.write(f"  {n} records checked"), trusted=trusted)
        if not result.ok:
            raise CommandError(f"audit log verification FAILED at {result.describe()}")
        self.stdout.write(
            f"audit log OK: {result.checked} records, sequence dense, every leaf hash matches, "
            f"{result.checkpoints} signed checkpoints match"
        )

    def _export(self, options: dict[str, Any]) -> None:
        out = export_bundle(options["out"], since=options["since"])
        self.stdout.write(f"audit bundle written to {out}; verify it with: python -m audit verify {out}")

    def _checkpoint(self, options: dict[str, Any]) -> None:
        drain_staged()
        row = make_checkpoint()
        self.stdout.write(f"newest checkpoint covers {row.size} records" if row else "the log is empty")
        status = check_audit_storage()
        self.stdout.write(f"audit storage: {status.percent}% of the budget ({status.level})")

    def _rotate_key(self, options: dict[str, Any]) -> None:
        rotation = rotate_signing_key()
        self.stdout.write(
            f"audit signing key rotated: {rotation.old_key_id} -> {rotation.new_key_id} "
            f"(checkpoint {rotation.checkpoint_size})"
        )
