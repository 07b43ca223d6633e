"""`manage.py demo_data`: the demo dataset of synthetic captured documents, for `make run` and first looks.

Created by the demo manager through the real actions (so it is labeled, keyed, encrypted and audited like any
dataset): labeled at the demo analyst's own clearance with its compartment, the demo analyst and reviewer made
members, and `--count` documents rendered by `appliance.datasets.demo_documents` imported into it. Idempotent: an
existing demo dataset is left as it is. Refused in production mode. Run `manage.py demo_users` first.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from appliance.access.policy import get_policy
from appliance.accounts.management.commands.demo_users import demo_clearance, demo_username
from appliance.accounts.management.commands.users import console_context
from appliance.accounts.models import User
from appliance.auditlog.context import audit_context
from appliance.datasets.actions import add_member, create_dataset
from appliance.datasets.demo_documents import demo_set
from appliance.datasets.imports import import_images
from appliance.datasets.models import Dataset

DEMO_DATASET = "Demo captured documents"


class Command(BaseCommand):
    help = "Create the demo dataset of synthetic documents (idempotent; needs the demo users)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=24, help="how many documents to render (default 24)")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo data is refused in production mode")
        if Dataset.objects.filter(name=DEMO_DATASET).exists():
            self.stdout.write(f"{DEMO_DATASET!r} exists; left unchanged")
            return
        policy = get_policy()
        people = {name: User.objects.filter(username=demo_username(policy.roles[name])).first()
                  for name in ("manager", "analyst", "reviewer") if name in policy.roles}  # fmt: skip
        manager = people.get("manager")
        if manager is None:
            raise CommandError("run `manage.py demo_users` first: the demo manager creates the dataset")
        level, compartments = demo_clearance(policy, policy.roles["analyst"])
        with audit_context(console_context()):
            dataset = create_dataset(
                manager,
                name=DEMO_DATASET,
                description="Synthetic scanned reports, memos and forms rendered by the appliance for the demo.",
                classification=level,
                compartments=compartments,
            )
            for name in ("analyst", "reviewer"):
                member = people.get(name)
                if member is not None:
                    add_member(manager, dataset=dataset, member=member)
            files = [(name, (lambda data=data: data)) for name, data, _ in demo_set(options["count"])]
            result = import_images(manager, dataset=dataset, files=files)
        self.stdout.write(
            f"created {DEMO_DATASET!r} ({dataset.access_label().banner()}) with {len(result.items)} documents"
        )
