"""`manage.py keys status|rotate-kek|sweep-orphans`: the operator's vault tools.

- `status`: the configured KEK (provider and key id, never key bytes), how many data keys are live or destroyed
  under which KEK, and leftover partial blob files. Exits non-zero when a live data key is under a KEK other than
  the configured one, because blobs under it cannot be read.
- `rotate-kek --new-kek-file PATH [--generate]` or `rotate-kek --new-pkcs11-key-label LABEL`: rewrap every live
  data key from the configured KEK to the new one, in one transaction, audited (`vault.kek.rotate`, key ids and
  counts). Then point `vault.kek_file` (or `vault.pkcs11_key_label`) at the new KEK and restart; running it again
  after that rewraps any key created under the old KEK meanwhile.
- `sweep-orphans [--older-than-minutes N]`: remove partial blob files left by a killed writer.
"""

from __future__ import annotations

import getpass
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.auditlog.context import AuditContext, audit_context
from appliance.lib.config import ConfigError
from appliance.vault.actions import VaultError, rotate_kek
from appliance.vault.blobs import PARTIAL_SUFFIX, blob_root, sweep_orphans
from appliance.vault.keys import (
    FileKeyProvider,
    KeyProvider,
    KeyProviderError,
    Pkcs11KeyProvider,
    configured_provider,
    generate_kek_file,
)
from appliance.vault.models import DataKey


class Command(BaseCommand):
    help = "Vault key tools: status, rotate-kek, sweep-orphans."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("status", help="show the configured KEK and the data keys under each KEK")
        rotate = sub.add_parser("rotate-kek", help="rewrap every live data key under a new KEK")
        target = rotate.add_mutually_exclusive_group(required=True)
        target.add_argument("--new-kek-file", type=Path, help="a KEK file (32 bytes, mode 0600 or 0400)")
        target.add_argument(
            "--new-pkcs11-key-label", help="a KEK in the configured PKCS#11 token (create it non-extractable)"
        )
        rotate.add_argument("--generate", action="store_true", help="create the new KEK file (0600) if missing")
        sweep = sub.add_parser("sweep-orphans", help="remove partial blob files left by a killed writer")
        sweep.add_argument("--older-than-minutes", type=int, default=60)

    def handle(self, *args: Any, **options: Any) -> None:
        context = AuditContext(component="cli", actor=f"os:{getpass.getuser()}")
        try:
            with audit_context(context):
                getattr(self, "_" + options["subcommand"].replace("-", "_"))(options)
        except (ConfigError, KeyProviderError, VaultError) as exc:
            raise CommandError(str(exc)) from exc

    def _status(self, options: dict[str, Any]) -> None:
        provider = configured_provider()
        self.stdout.write(f"configured KEK: {provider.name} {provider.key_id}")
        live = Counter(DataKey.objects.filter(destroyed_at__isnull=True).values_list("kek_id", flat=True))
        destroyed = DataKey.objects.filter(destroyed_at__isnull=False).count()
        for kek_id, count in sorted(live.items()):
            marker = "" if kek_id == provider.key_id else "  <- NOT the configured KEK: run rotate-kek"
            self.stdout.write(f"live data keys under {kek_id}: {count}{marker}")
        self.stdout.write(f"destroyed data keys: {destroyed}")
        root = blob_root()
        partial = sum(1 for _ in root.glob(f"*/*/*{PARTIAL_SUFFIX}")) if root.is_dir() else 0
        self.stdout.write(f"blob folder: {root}; partial files: {partial}")
        stale = sorted(set(live) - {provider.key_id})
        if stale:
            raise CommandError(f"{sum(live[k] for k in stale)} live data key(s) under KEK(s) {', '.join(stale)}")

    def _rotate_kek(self, options: dict[str, Any]) -> None:
        old = configured_provider()
        new: KeyProvider
        if options["new_kek_file"] is not None:
            path: Path = options["new_kek_file"]
            if options["generate"] and not path.exists():
                generate_kek_file(path)
            new = FileKeyProvider(path)
        elif isinstance(old, Pkcs11KeyProvider):
            new = old.with_key_label(options["new_pkcs11_key_label"])
        else:
            raise CommandError("--new-pkcs11-key-label needs vault.provider = 'pkcs11' (its module, token and PIN)")
        counts = rotate_kek(old=old, new=new)
        self.stdout.write(
            f"KEK rotated {old.key_id} -> {new.key_id}: {counts['rewrapped']} data keys rewrapped, "
            f"{counts['already_current']} already under the new KEK, {counts['destroyed']} destroyed left as they are"
        )
        setting = "vault.kek_file" if options["new_kek_file"] is not None else "vault.pkcs11_key_label"
        self.stdout.write(f"now set {setting} to the new KEK and restart the appliance's processes")

    def _sweep_orphans(self, options: dict[str, Any]) -> None:
        removed = sweep_orphans(older_than=timedelta(minutes=options["older_than_minutes"]))
        for path in removed:
            self.stdout.write(f"removed {path}")
        self.stdout.write(f"{len(removed)} partial blob file(s) removed")
