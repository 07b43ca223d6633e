"""`manage.py users …`: the administrator's console for accounts, for the first admin and for scripted set-up.

Why a console at all: someone must create the first administrator before anyone can sign in, and sites script
account set-up from their own identity records. Every subcommand goes through `appliance.accounts.actions`, so it
validates and audits exactly as the web pages do; the audit records name the operating-system login that ran it
(`os:<login>`, component "cli"). A password is read only from standard input (`--password-stdin`) or a hidden
prompt, never from the command line, where `ps` and the shell history would keep it.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from appliance.accounts.actions import (
    AccountError,
    account_named,
    account_state,
    create_user,
    disable_user,
    enable_user,
    lock_user,
    set_clearance,
    set_roles,
    unlock_user,
)
from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.recorder import record


def names(value: str) -> list[str]:
    """A comma-separated list on the command line ("analyst,reviewer"); blanks are dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def console_context() -> AuditContext:
    """Who runs the command: the operating-system login, since the console has no signed-in appliance user."""
    return AuditContext(component="cli", actor=f"os:{getpass.getuser()}")


class Command(BaseCommand):
    help = "Manage accounts: add, lock, unlock, disable, enable, set roles or clearance, list."
    stealth_options = ("stdin",)  # tests hand in a StringIO, as Django's own createsuperuser allows

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        add = sub.add_parser("add", help="create an account")
        add.add_argument("username")
        add.add_argument("--roles", type=names, required=True, help="comma-separated role names from the policy")
        add.add_argument("--clearance", required=True, help="a level name from policies/classification.toml")
        add.add_argument("--compartments", type=names, default=[], help="comma-separated compartment names")
        add.add_argument("--display-name", default="", help="the person's name, shown beside the username")
        add.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the first password from one line of standard input (else prompt without echo)",
        )
        for verb, text in (
            ("lock", "lock an account and end its sessions"),
            ("unlock", "release a lock and reset the failed sign-in count"),
            ("disable", "disable an account and end its sessions"),
            ("enable", "re-enable a disabled account"),
        ):
            sub.add_parser(verb, help=text).add_argument("username")
        roles = sub.add_parser("set-roles", help="replace an account's roles")
        roles.add_argument("username")
        roles.add_argument("--roles", type=names, required=True)
        clearance = sub.add_parser("set-clearance", help="set an account's clearance and compartments")
        clearance.add_argument("username")
        clearance.add_argument("--clearance", required=True)
        clearance.add_argument("--compartments", type=names, default=[])
        sub.add_parser("list", help="list every account with its roles, clearance and state")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdin: TextIO = options.get("stdin") or sys.stdin
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "add": self.add,
            "lock": lambda o: self.change(
                o, lambda user: lock_user(user, reason="locked at the console", by=None), "locked"
            ),
            "unlock": lambda o: self.change(o, lambda user: unlock_user(user, by=None), "unlocked"),
            "disable": lambda o: self.change(o, lambda user: disable_user(user, by=None), "disabled"),
            "enable": lambda o: self.change(o, lambda user: enable_user(user, by=None), "enabled"),
            "set-roles": lambda o: self.change(o, lambda user: set_roles(user, roles=o["roles"], by=None), "updated"),
            "set-clearance": lambda o: self.change(
                o,
                lambda user: set_clearance(user, level=o["clearance"], compartments=o["compartments"], by=None),
                "updated",
            ),
            "list": self.list_users,
        }
        with audit_context(console_context()):
            try:
                handlers[options["subcommand"]](options)
            except AccountError as exc:
                raise CommandError(str(exc)) from exc

    def read_password(self, options: dict[str, Any]) -> str:
        if options["password_stdin"]:
            line = self.stdin.readline()
            password = line.removesuffix("\n").removesuffix("\r")
            if not password:
                raise CommandError("no password on standard input (expected one line)")
            return password
        if not self.stdin.isatty():
            raise CommandError("standard input is not a terminal: pass --password-stdin and pipe the password")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the two passwords differ")
        return first

    def add(self, options: dict[str, Any]) -> None:
        password = self.read_password(options)
        user = create_user(
            username=options["username"],
            display_name=options["display_name"],
            roles=options["roles"],
            clearance=options["clearance"],
            compartments=options["compartments"],
            password=password,
            by=None,
        )
        self.stdout.write(f"created {user.username} ({', '.join(user.roles)}; cleared {self.clearance_of(user)})")

    def change(self, options: dict[str, Any], action: Callable[[User], User], done: str) -> None:
        user = action(account_named(options["username"]))
        self.stdout.write(f"{done} {user.username} (now {account_state(user)})")

    def list_users(self, options: dict[str, Any]) -> None:
        users = list(User.objects.order_by("username"))
        with transaction.atomic():  # reading the account table is itself a privileged act worth a record
            record(action="user.list", object_type="user", details={"count": len(users)})
        header = ("USERNAME", "ROLES", "CLEARANCE", "COMPARTMENTS", "STATE")
        rows = [header] + [
            (
                user.username,
                ",".join(sorted(user.roles)) or "-",
                user.clearance,
                ",".join(sorted(user.compartments)) or "-",
                account_state(user),
            )
            for user in users
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    @staticmethod
    def clearance_of(user: User) -> str:
        compartments = "/".join(sorted(user.compartments))
        return f"{user.clearance}//{compartments}" if compartments else user.clearance
