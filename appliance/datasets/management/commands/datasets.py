"""`manage.py datasets list|import`: the operator's dataset tools.

- `list`: every dataset with its label, item count and members (for operators: no imagery is shown).
- `gc [--older-than-hours H]`: remove blob files no item names and partial files, older than the grace period
  (what a killed import leaves; unreadable ciphertext either way).
- `import DATASET PATH --as USER`: import a zip or tar archive, or a folder of images, on behalf of USER (who
  must pass the same three gates as on the web: "dataset.import", clearance and membership). The archive is read
  twice, one member at a time, so memory does not grow with it; a progress line shows count, rate and ETA. All
  or nothing: every refusal is listed and nothing is imported unless everything passes. The import is recorded
  with USER as the actor and the command line as the component.
"""

from __future__ import annotations

import getpass
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.access.denial import AccessDenied
from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.housekeeping import sweep_unreferenced_blobs
from appliance.datasets.imports import ImportRefused, ImportResult, import_archive, import_images
from appliance.datasets.models import Dataset, Item
from appliance.vault.blobs import sweep_orphans


class ProgressLine:
    """`done/total (percent) rate/s ETA` on one line of stderr, redrawn at most ten times a second."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        eta = (total - done) / rate if rate else 0.0
        self.stream.write(f"\r  stored {done}/{total} ({done * 100 // max(total, 1)}%) {rate:.1f}/s ETA {eta:.0f}s ")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "Dataset tools: list, import."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("list", help="every dataset with its label, item count and members")
        load = sub.add_parser("import", help="import an archive or a folder of images into a dataset")
        load.add_argument("dataset", help="the dataset's id or name")
        load.add_argument("path", type=Path, help="a zip, tar or tar.gz archive, or a folder of images")
        load.add_argument("--as", dest="username", required=True, help="the user on whose behalf to import")
        gc = sub.add_parser("gc", help="remove blob files no item names (left by killed imports)")
        gc.add_argument("--older-than-hours", type=float, default=6.0, help="grace period (default 6)")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "_" + options["subcommand"])(options)

    def _gc(self, options: dict[str, Any]) -> None:
        grace = timedelta(hours=options["older_than_hours"])
        partials = sweep_orphans(older_than=grace)
        removed = sweep_unreferenced_blobs(older_than=grace)
        self.stdout.write(f"removed {len(removed)} unreferenced blob(s) and {len(partials)} partial file(s)")

    def _list(self, options: dict[str, Any]) -> None:
        for dataset in Dataset.objects.order_by("id"):
            members = ", ".join(dataset.members.order_by("username").values_list("username", flat=True))
            count = Item.objects.filter(dataset=dataset).count()
            self.stdout.write(
                f"{dataset.pk}\t{dataset.name}\t{dataset.access_label().banner()}\t{count} items\t{members}"
            )

    def _import(self, options: dict[str, Any]) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        key = options["dataset"]
        dataset = Dataset.objects.filter(pk=int(key)).first() if key.isdigit() else None
        dataset = dataset or Dataset.objects.filter(name=key).first()
        if dataset is None:
            raise CommandError(f"no dataset {key!r}")
        path: Path = options["path"]
        context = AuditContext(component="cli", actor=user.get_username(), roles=tuple(user.roles),
                               session=f"os:{getpass.getuser()}")  # fmt: skip
        try:
            with audit_context(context):
                result = self._run(user, dataset, path)
        except AccessDenied as exc:
            raise CommandError(f"{user.get_username()} may not import into dataset {key!r} (recorded)") from exc
        except ImportRefused as exc:
            raise CommandError("nothing was imported:\n  " + "\n  ".join(exc.lines)) from exc
        for line in result.report:
            if not line.startswith("accepted:"):
                self.stdout.write(f"  {line}")
        self.stdout.write(f"imported {len(result.items)} image(s) into {dataset.name}")

    def _run(self, user: User, dataset: Dataset, path: Path) -> ImportResult:
        progress = ProgressLine(sys.stderr)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            named = [(str(p.relative_to(path)), p.read_bytes) for p in files]
            return import_images(user, dataset=dataset, files=named, progress=progress)
        if not path.is_file():
            raise CommandError(f"{path} is neither a file nor a folder")
        return import_archive(user, dataset=dataset, name=path.name, open_archive=lambda: path.open("rb"),
                              progress=progress)  # fmt: skip
