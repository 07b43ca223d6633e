"""audit/controls.toml stays true: every rule it cites is a STIG rule id and every test it names exists."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = tomllib.loads((ROOT / "audit" / "controls.toml").read_text())["control"]
STIG_RULES = ROOT.parent / "shared" / "reference" / "asd_v6r1_rules.tsv"


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c["id"])
def test_every_named_test_exists(control):
    assert re.fullmatch(r"V-\d{6}", control["id"])
    assert control["tests"], "a control without a test proves nothing"
    for node_id in control["tests"]:
        file, _, name = node_id.partition("::")
        assert (ROOT / file).is_file(), f"{control['id']}: {file} does not exist"
        assert name in defined_tests(ROOT / file), f"{control['id']}: {node_id} does not exist"


def test_no_rule_is_listed_twice():
    ids = [control["id"] for control in CONTROLS]
    assert len(ids) == len(set(ids))


@pytest.mark.skipif(not STIG_RULES.exists(), reason="the STIG rule list is not beside this checkout")
def test_every_cited_rule_is_in_the_stig():
    known = {line.split("\t", 1)[0] for line in STIG_RULES.read_text().splitlines()}
    unknown = [control["id"] for control in CONTROLS if control["id"] not in known]
    assert not unknown
