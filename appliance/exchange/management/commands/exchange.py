"""`manage.py exchange`: exports and imports from the console, as a named appliance user.

exchange export PROJECT --format F --as USER [--images]   build an export into the vault, printing progress
exchange import PROJECT --format F --file PATH --as USER [--match name|sha256] [--mode add|replace] [--dry-run]

The acting user's permissions apply exactly as in the browser, and the records say it came from the console. An
export is never written out here: it leaves the appliance only through a two-person release (page or API).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.access.denial import AccessDenied
from appliance.accounts.management.commands.users import console_context
from appliance.accounts.models import User
from appliance.auditlog.context import audit_context, update
from appliance.exchange import actions
from appliance.exchange.importing import FORMATS, MATCH_BY, MODES
from appliance.exchange.jobs import execute_export
from appliance.exchange.models import ExportFormat
from appliance.labeling.models import Project


def _project(ref: str) -> Project:
    project = Project.objects.filter(pk=int(ref)).first() if ref.isdigit() else Project.objects.filter(name=ref).first()
    if project is None:
        raise CommandError(f"no project {ref!r}")
    return project


class Command(BaseCommand):
    help = "Export a project's annotations into the vault, or import annotations from a file."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        export = sub.add_parser("export", help="build an export (COCO, YOLO, VOC, CVAT) into the vault")
        export.add_argument("project", help="project name or id")
        export.add_argument("--format", required=True, choices=ExportFormat.values)
        export.add_argument("--images", action="store_true", help="include the decrypted images in the export")
        export.add_argument("--as", dest="username", required=True)
        imp = sub.add_parser("import", help="import annotations from a file or zip")
        imp.add_argument("project", help="project name or id")
        imp.add_argument("--format", required=True, choices=FORMATS)
        imp.add_argument("--file", required=True, type=Path)
        imp.add_argument("--match", choices=MATCH_BY, default="name")
        imp.add_argument("--mode", choices=MODES, default="add")
        imp.add_argument("--dry-run", action="store_true")
        imp.add_argument("--as", dest="username", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no account {options['username']!r}")
        project = _project(options["project"])
        with audit_context(console_context()):
            update(actor=user.get_username(), roles=list(user.roles))
            try:
                if options["subcommand"] == "export":
                    self._export(user, project, options)
                else:
                    self._import(user, project, options)
            except actions.ExchangeError as exc:
                raise CommandError(str(exc)) from exc
            except AccessDenied as exc:
                exc.record()
                raise CommandError(f"{user.get_username()} may not do this (or it does not exist)") from exc

    def _export(self, user: User, project: Project, options: dict[str, Any]) -> None:
        export = actions.create_export(
            user, project=project, format=options["format"], include_images=options["images"]
        )
        self.stdout.write(f"export {export.pk} queued: {export.total} annotations")
        export = execute_export(export.pk, report=lambda done, total: self.stdout.write(f"  {done}/{total}"))
        if export.state != "done":
            raise CommandError(f"export {export.pk} {export.state}: {export.error}")
        self.stdout.write(
            f"export {export.pk} done: {export.done} annotations, {export.size} bytes, sha256 {export.sha256}, "
            f"label {export.access_label().banner()}"
        )
        if export.report.get("dropped"):
            self.stdout.write("not carried by this format: " + json.dumps(export.report["dropped"]))

    def _import(self, user: User, project: Project, options: dict[str, Any]) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no file {path}")
        with path.open("rb") as stream:
            summary = actions.import_annotations(
                user,
                project=project,
                format=options["format"],
                stream=stream,
                file_name=path.name,
                match=options["match"],
                mode=options["mode"],
                dry_run=options["dry_run"],
            )
        summary.pop("per_image", None)
        self.stdout.write(json.dumps(summary, indent=2))
