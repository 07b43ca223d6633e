"""`manage.py demo_users`: one demonstration account per role of the policy, for `make run` and first looks.

Why from the policy and not a fixed list: the roles are the site's data (policies/roles.toml), so the demo shows
whatever roles are in force. Roles that work on labeled objects (any object-scoped permission) are cleared to the
level just below the top with the first compartment, so that a demo shows the label gate hiding the top level and
the other compartments; roles that never see imagery get the page level and no compartment (least privilege).

Idempotent: an existing account is left exactly as it is. Each password is freshly generated, policy-compliant,
and printed once, only for accounts created now; it is stored nowhere else. Refused in production mode, where
accounts with printed passwords have no place.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from appliance.access.policy import Policy, Role, get_policy
from appliance.accounts.actions import AccountError, create_user
from appliance.accounts.management.commands.users import console_context
from appliance.accounts.models import User
from appliance.accounts.passwords import password_problems
from appliance.auditlog.context import audit_context

_SPECIALS = "-_.!@#%+=~"
_ALPHABET = string.ascii_letters + string.digits + _SPECIALS


def generate_password(policy: Policy) -> str:
    """A random password that passes the policy: at least 20 characters, every required character class."""
    rules = policy.security.password
    length = min(max(rules.min_length, 20), rules.max_length)
    while True:
        candidate = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if not password_problems(candidate):
            return candidate


def demo_username(role: Role) -> str:
    return f"demo-{role.name.lower()}"


def demo_clearance(policy: Policy, role: Role) -> tuple[str, list[str]]:
    """(level, compartments) for the demo holder of `role`; see the module docstring for the reasoning."""
    classification = policy.classification
    handles_objects = any(policy.permissions[name].scope == "object" for name in role.permissions)
    if not handles_objects:
        return classification.page_level, []
    levels = classification.levels
    level = levels[-2] if len(levels) > 1 else levels[-1]
    first = sorted(classification.compartments)[:1]
    return level.name, first


class Command(BaseCommand):
    help = "Create one demonstration account per role of the policy (idempotent); prints new passwords once."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo accounts are refused in production mode")
        policy = get_policy()
        created = 0
        with audit_context(console_context()):
            for role in policy.roles.values():
                username = demo_username(role)
                if User.objects.filter(username=username).exists():
                    self.stdout.write(f"{username} exists; left unchanged")
                    continue
                level, compartments = demo_clearance(policy, role)
                password = generate_password(policy)
                try:
                    create_user(
                        username=username,
                        display_name=f"Demo {role.name}",
                        roles=[role.name],
                        clearance=level,
                        compartments=compartments,
                        password=password,
                        by=None,
                    )
                except AccountError as exc:
                    raise CommandError(f"{username}: {exc}") from exc
                created += 1
                marking = "/".join(compartments)
                cleared = f"{level}//{marking}" if marking else level
                self.stdout.write(f"created {username} ({role.name}, cleared {cleared})  password: {password}")
        if created:
            self.stdout.write(
                "These passwords are shown only now. Roles that require a second factor enrol one at first sign-in."
            )
