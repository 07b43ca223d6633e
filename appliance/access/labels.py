"""Classification labels of objects and subjects, and the dominance rule between them (no read up).

A compartment set is stored as one canonical marking string, "/ALPHA/BRAVO/" (sorted, slash-delimited, "/" for
none), so that the subset test of the label gate can run inside the database as one regular-expression match
on both SQLite and PostgreSQL, without a join and without post-filtering in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.access.policy import Classification


@dataclass(frozen=True)
class Label:
    level: str
    compartments: frozenset[str] = frozenset()

    def banner(self) -> str:
        """The banner line: "SECRET//ALPHA/BRAVO", or the bare level without compartments."""
        if not self.compartments:
            return self.level
        return f"{self.level}//{'/'.join(sorted(self.compartments))}"


def compartment_marking(names: Iterable[str]) -> str:
    """The canonical stored form of a compartment set."""
    ordered = sorted(set(names))
    return "/" + "".join(f"{name}/" for name in ordered)


def parse_marking(marking: str) -> frozenset[str]:
    return frozenset(part for part in marking.split("/") if part)


def marking_subset_regex(held: Iterable[str]) -> str:
    """A regex that matches exactly the markings made only of compartments in `held`."""
    names = sorted(set(held))
    if not names:
        return r"^/$"
    return r"^/((" + "|".join(re.escape(name) for name in names) + r")/)*$"


def dominates(*, clearance: str, held: Iterable[str], label: Label, classification: Classification) -> bool:
    """True when a subject cleared to `clearance` holding `held` compartments may read `label`."""
    if label.level not in classification.dominated_by(clearance):
        return False
    return label.compartments <= frozenset(held)


def highest(labels: Iterable[Label], classification: Classification) -> Label:
    """The least upper bound of `labels`: the highest level and the union of compartments (page banners)."""
    level = classification.page_level
    compartments: set[str] = set()
    for label in labels:
        if classification.rank(label.level) > classification.rank(level):
            level = label.level
        compartments |= label.compartments
    return Label(level=level, compartments=frozenset(compartments))
