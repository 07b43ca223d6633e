"""The release rules per classification level, from the `[release]` table of policies/classification.toml.

The access policy loader reads that file for its levels and ignores this table; it is read and checked here so
that the exchange app owns its own rules, with the same fail-loudly behaviour: a missing level, an unknown level
or a non-boolean value stops start-up instead of defaulting to something permissive.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings

from appliance.access.policy import PolicyError, get_policy

FILE = "classification.toml"
KEYS = ("two_person", "plain")


@dataclass(frozen=True)
class ReleaseRule:
    two_person: bool
    plain: bool


def load_release_rules(directory: Path, levels: list[str]) -> dict[str, ReleaseRule]:
    document = tomllib.loads((directory / FILE).read_text("utf-8"))
    table = document.get("release")
    if not isinstance(table, dict):
        raise PolicyError(f"{FILE}: 'release' must be a table with one row per level")
    rules: dict[str, ReleaseRule] = {}
    for level, row in table.items():
        if level not in levels:
            raise PolicyError(f"{FILE}: 'release.{level}' names an unknown level")
        if not isinstance(row, dict) or sorted(row) != sorted(KEYS):
            raise PolicyError(f"{FILE}: 'release.{level}' must set exactly {', '.join(KEYS)}")
        for key in KEYS:
            if not isinstance(row[key], bool):
                raise PolicyError(f"{FILE}: 'release.{level}.{key}' must be true or false")
        rules[level] = ReleaseRule(two_person=row["two_person"], plain=row["plain"])
    missing = [level for level in levels if level not in rules]
    if missing:
        raise PolicyError(f"{FILE}: 'release' has no row for level(s) {missing}")
    return rules


@cache
def release_rules() -> dict[str, ReleaseRule]:
    levels = [level.name for level in get_policy().classification.levels]
    return load_release_rules(Path(settings.POLICY_DIR), levels)


def rule_for(level: str) -> ReleaseRule:
    return release_rules()[level]
