"""Loads and validates the policy files; anything unknown or weaker than the STIG floor stops start-up.

The policy is read once per process and is immutable afterwards. Each file's SHA-256 is kept so that start-up can
audit exactly which policy was in force.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY_FILES = ("roles.toml", "classification.toml", "security.toml")
SCOPES = ("system", "object")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_COMPARTMENT = re.compile(r"^[A-Z0-9_-]+$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class PolicyError(Exception):
    """A policy file is missing, malformed, inconsistent or weaker than the floor; the message names the spot."""


@dataclass(frozen=True)
class Permission:
    name: str
    scope: str
    description: str


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    permissions: frozenset[str]


@dataclass(frozen=True)
class Level:
    name: str
    rank: int
    banner: str
    background: str
    foreground: str


@dataclass(frozen=True)
class Classification:
    levels: tuple[Level, ...]
    compartments: Mapping[str, str]
    page_level: str

    def level(self, name: str) -> Level:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)

    def rank(self, name: str) -> int:
        return self.level(name).rank

    def dominated_by(self, clearance: str) -> list[str]:
        """Names of the levels a holder of `clearance` may read (at or below it); none for an unknown one."""
        try:
            ceiling = self.rank(clearance)
        except KeyError:
            return []
        return [level.name for level in self.levels if level.rank <= ceiling]


@dataclass(frozen=True)
class PasswordRules:
    min_length: int
    max_length: int
    require_uppercase: bool
    require_lowercase: bool
    require_digit: bool
    require_special: bool
    min_changed_characters: int
    pbkdf2_iterations: int


@dataclass(frozen=True)
class Security:
    password: PasswordRules
    lockout_max_failures: int
    lockout_window_minutes: int
    idle_minutes: int
    idle_minutes_by_role: Mapping[str, int]
    absolute_hours: int
    consent_valid_minutes: int
    mfa_required_for_roles: frozenset[str]
    mfa_pending_minutes: int
    totp_step_seconds: int
    totp_tolerance_steps: int
    token_default_lifetime_days: int
    token_max_lifetime_days: int
    checkpoint_every_records: int
    checkpoint_every_seconds: int


@dataclass(frozen=True)
class Policy:
    permissions: Mapping[str, Permission]
    roles: Mapping[str, Role]
    mutually_exclusive: tuple[frozenset[str], ...]
    not_on_own_work: frozenset[str]
    classification: Classification
    security: Security
    file_hashes: Mapping[str, str]


def load_policy(directory: Path) -> Policy:
    """Read, validate and return the policy in `directory`; raise PolicyError naming the first problem."""
    documents: dict[str, dict[str, Any]] = {}
    hashes: dict[str, str] = {}
    for name in POLICY_FILES:
        path = directory / name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read policy file ({exc.strerror})") from exc
        try:
            documents[name] = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
        hashes[name] = hashlib.sha256(raw).hexdigest()

    permissions, roles, exclusive, own_work = _parse_roles(documents["roles.toml"])
    classification = _parse_classification(documents["classification.toml"])
    security = _parse_security(documents["security.toml"], roles)
    return Policy(
        permissions=permissions,
        roles=roles,
        mutually_exclusive=exclusive,
        not_on_own_work=own_work,
        classification=classification,
        security=security,
        file_hashes=hashes,
    )


class _Reader:
    """Typed lookups in one TOML document whose errors name the file and the dotted key."""

    def __init__(self, filename: str, document: Mapping[str, Any]) -> None:
        self.filename = filename
        self.document = document

    def fail(self, key: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.filename}: '{key}' {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], *, default: Any = None) -> Any:
        node: Any = self.document
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is not None:
                    return default
                raise self.fail(key, "is missing")
            node = node[part]
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            raise self.fail(key, f"must be {_kind_name(kind)}, got {node!r}")
        return node

    def integer(self, key: str, *, at_least: int = 0, at_most: int | None = None, default: Any = None) -> int:
        value = int(self.get(key, int, default=default))
        if value < at_least:
            raise self.fail(key, f"must be at least {at_least}, got {value}")
        if at_most is not None and value > at_most:
            raise self.fail(key, f"must be at most {at_most} (the STIG floor), got {value}")
        return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _parse_roles(
    document: Mapping[str, Any],
) -> tuple[dict[str, Permission], dict[str, Role], tuple[frozenset[str], ...], frozenset[str]]:
    reader = _Reader("roles.toml", document)
    permissions: dict[str, Permission] = {}
    for name, spec in reader.get("permissions", dict).items():
        key = f"permissions.{name}"
        if not _NAME.match(name) or not isinstance(spec, dict):
            raise reader.fail(key, "must be a table with a plain name")
        scope = spec.get("scope")
        if scope not in SCOPES:
            raise reader.fail(f"{key}.scope", f"must be one of {', '.join(SCOPES)}, got {scope!r}")
        description = spec.get("description")
        if not isinstance(description, str) or not description:
            raise reader.fail(f"{key}.description", "must be a non-empty string")
        permissions[name] = Permission(name=name, scope=scope, description=description)

    roles: dict[str, Role] = {}
    for name in reader.get("roles", dict):
        if not _NAME.match(name):
            raise reader.fail(f"roles.{name}", "is not a plain name")
        granted = reader.get(f"roles.{name}.permissions", list)
        unknown = [p for p in granted if p not in permissions]
        if unknown:
            raise reader.fail(f"roles.{name}.permissions", f"names unknown permission(s): {', '.join(unknown)}")
        roles[name] = Role(
            name=name,
            description=reader.get(f"roles.{name}.description", str),
            permissions=frozenset(granted),
        )
    if not roles:
        raise reader.fail("roles", "defines no role")

    exclusive: list[frozenset[str]] = []
    for group in reader.get("separation_of_duties.mutually_exclusive", list):
        if not isinstance(group, list) or len(group) < 2:
            raise reader.fail("separation_of_duties.mutually_exclusive", "must hold lists of two or more roles")
        unknown = [r for r in group if r not in roles]
        if unknown:
            raise reader.fail("separation_of_duties.mutually_exclusive", f"names unknown role(s): {unknown}")
        exclusive.append(frozenset(group))
    own_work = reader.get("separation_of_duties.not_on_own_work", list)
    unknown = [p for p in own_work if p not in permissions]
    if unknown:
        raise reader.fail("separation_of_duties.not_on_own_work", f"names unknown permission(s): {unknown}")
    return permissions, roles, tuple(exclusive), frozenset(own_work)


def _parse_classification(document: Mapping[str, Any]) -> Classification:
    reader = _Reader("classification.toml", document)
    levels: list[Level] = []
    for rank, spec in enumerate(reader.get("levels", list)):
        item = _Reader("classification.toml", spec if isinstance(spec, dict) else {})
        prefix = f"levels[{rank}]"
        try:
            name = item.get("name", str)
            banner = item.get("banner", str)
            background = item.get("background", str)
            foreground = item.get("foreground", str)
        except PolicyError as exc:
            raise PolicyError(str(exc).replace("classification.toml: '", f"classification.toml: '{prefix}.")) from exc
        for key, colour in (("background", background), ("foreground", foreground)):
            if not _COLOUR.match(colour):
                raise reader.fail(f"{prefix}.{key}", f"must be a colour like #c8102e, got {colour!r}")
        if any(level.name == name for level in levels):
            raise reader.fail(f"{prefix}.name", f"repeats level {name!r}")
        levels.append(Level(name=name, rank=rank, banner=banner, background=background, foreground=foreground))
    if not levels:
        raise reader.fail("levels", "defines no level")

    compartments = document.get("compartments", {})
    if not isinstance(compartments, dict):
        raise reader.fail("compartments", "must be a table of name = description")
    for name, description in compartments.items():
        if not _COMPARTMENT.match(name) or not isinstance(description, str):
            raise reader.fail(f"compartments.{name}", "must be an upper-case name with a description")
    page_level = reader.get("system.page_level", str)
    if page_level not in {level.name for level in levels}:
        raise reader.fail("system.page_level", f"names unknown level {page_level!r}")
    return Classification(levels=tuple(levels), compartments=dict(compartments), page_level=page_level)


def _parse_security(document: Mapping[str, Any], roles: Mapping[str, Role]) -> Security:
    reader = _Reader("security.toml", document)
    password = PasswordRules(
        min_length=reader.integer("password.min_length", at_least=15),
        max_length=reader.integer("password.max_length", at_least=15, at_most=4096),
        require_uppercase=reader.get("password.require_uppercase", bool),
        require_lowercase=reader.get("password.require_lowercase", bool),
        require_digit=reader.get("password.require_digit", bool),
        require_special=reader.get("password.require_special", bool),
        min_changed_characters=reader.integer("password.min_changed_characters", at_least=8),
        pbkdf2_iterations=reader.integer("password.pbkdf2_iterations", at_least=600_000),
    )
    for key in ("require_uppercase", "require_lowercase", "require_digit", "require_special"):
        if not getattr(password, key):
            raise reader.fail(f"password.{key}", "may not be false (STIG V-222537..540)")
    if password.max_length < password.min_length:
        raise reader.fail("password.max_length", "is below password.min_length")

    by_role: dict[str, int] = {}
    for role, minutes in reader.get("session.idle_minutes_by_role", dict, default={"": 0}).items():
        if role == "":
            continue
        if role not in roles:
            raise reader.fail(f"session.idle_minutes_by_role.{role}", "names an unknown role")
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 15:
            raise reader.fail(f"session.idle_minutes_by_role.{role}", "must be an integer from 1 to 15")
        by_role[role] = minutes

    mfa_roles = reader.get("mfa.required_for_roles", list)
    unknown = [r for r in mfa_roles if r not in roles]
    if unknown:
        raise reader.fail("mfa.required_for_roles", f"names unknown role(s): {unknown}")

    default_days = reader.integer("tokens.default_lifetime_days", at_least=1)
    max_days = reader.integer("tokens.max_lifetime_days", at_least=1, at_most=365)
    if default_days > max_days:
        raise reader.fail("tokens.default_lifetime_days", "exceeds tokens.max_lifetime_days")

    return Security(
        password=password,
        lockout_max_failures=reader.integer("lockout.max_failures", at_least=1, at_most=3),
        lockout_window_minutes=reader.integer("lockout.window_minutes", at_least=15),
        idle_minutes=reader.integer("session.idle_minutes", at_least=1, at_most=15),
        idle_minutes_by_role=by_role,
        absolute_hours=reader.integer("session.absolute_hours", at_least=1, at_most=24),
        consent_valid_minutes=reader.integer("session.consent_valid_minutes", at_least=1, at_most=60),
        mfa_required_for_roles=frozenset(mfa_roles),
        mfa_pending_minutes=reader.integer("mfa.pending_minutes", at_least=1, at_most=15),
        totp_step_seconds=reader.integer("mfa.totp_step_seconds", at_least=15, at_most=60),
        totp_tolerance_steps=reader.integer("mfa.totp_tolerance_steps", at_least=0, at_most=2),
        token_default_lifetime_days=default_days,
        token_max_lifetime_days=max_days,
        checkpoint_every_records=reader.integer("audit.checkpoint_every_records", at_least=1),
        checkpoint_every_seconds=reader.integer("audit.checkpoint_every_seconds", at_least=1),
    )


_loaded: Policy | None = None


def install_policy(policy: Policy) -> None:
    """Make `policy` the process-wide policy (start-up, and tests that exercise another policy)."""
    global _loaded
    _loaded = policy


def get_policy() -> Policy:
    """The policy in force; loaded at start-up by the access app, so this never reads a file on a request."""
    if _loaded is None:
        raise RuntimeError("the access policy has not been loaded (appliance.access app not ready)")
    return _loaded
