"""`manage.py demo_project`: a labeling project over the demo documents, ready for the demo analyst's queue.

Created by the demo manager through the real actions (labeled, audited), with a schema of the document-layout
classes the demo layout model proposes (CDLA: text, title, figure, table, their captions, header, footer,
reference, equation) plus "text_line" for the text detector, each with a shortcut key, and one task per document.
The demo analyst and reviewer are its members. Idempotent; refused in production mode; run after `demo_data`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from appliance.access.policy import get_policy
from appliance.accounts.management.commands.demo_users import demo_username
from appliance.accounts.management.commands.users import console_context
from appliance.accounts.models import User
from appliance.auditlog.context import audit_context
from appliance.datasets.management.commands.demo_data import DEMO_DATASET
from appliance.datasets.models import Dataset
from appliance.labeling.actions import add_project_member, create_project, create_tasks
from appliance.labeling.models import Project

DEMO_PROJECT = "Demo document layout"
LAYOUT_CLASSES = (
    ("text", "#1f77b4", "1"),
    ("title", "#d62728", "2"),
    ("figure", "#2ca02c", "3"),
    ("table", "#9467bd", "4"),
    ("figure_caption", "#8c564b", "5"),
    ("table_caption", "#e377c2", "6"),
    ("header", "#7f7f7f", "7"),
    ("footer", "#bcbd22", "8"),
    ("reference", "#17becf", "9"),
    ("equation", "#ff7f0e", "0"),
    ("text_line", "#393b79", "x"),
)
DEMO_SCHEMA = {
    "classes": [
        {
            "name": name,
            "colour": colour,
            "shortcut": key,
            "attributes": [
                {"name": "legible", "kind": "checkbox"},
                {"name": "language", "kind": "select", "options": ["English", "French", "German", "other"]},
            ]
            if name in ("text", "text_line")
            else [],
        }
        for name, colour, key in LAYOUT_CLASSES
    ]
}


class Command(BaseCommand):
    help = "Create the demo labeling project over the demo documents (idempotent; needs demo_users and demo_data)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo data is refused in production mode")
        if Project.objects.filter(name=DEMO_PROJECT).exists():
            self.stdout.write(f"{DEMO_PROJECT!r} exists; left unchanged")
            return
        dataset = Dataset.objects.filter(name=DEMO_DATASET).first()
        if dataset is None:
            raise CommandError("run `manage.py demo_data` first: the project labels the demo documents")
        policy = get_policy()
        people = {name: User.objects.filter(username=demo_username(policy.roles[name])).first()
                  for name in ("manager", "analyst", "reviewer") if name in policy.roles}  # fmt: skip
        manager = people.get("manager")
        if manager is None:
            raise CommandError("run `manage.py demo_users` first: the demo manager creates the project")
        with audit_context(console_context()):
            project = create_project(
                manager,
                name=DEMO_PROJECT,
                description="Mark the layout of each captured document: blocks, titles, tables, figures, lines.",
                dataset_ids=[dataset.pk],
                schema=DEMO_SCHEMA,
            )
            for name in ("analyst", "reviewer"):
                member = people.get(name)
                if member is not None:
                    add_project_member(manager, project=project, member=member)
            count = create_tasks(manager, project=project)
        self.stdout.write(f"created {DEMO_PROJECT!r} ({project.access_label().banner()}) with {count} tasks")
