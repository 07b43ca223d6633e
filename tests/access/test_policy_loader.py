"""The policy loader refuses anything broken, unknown or weaker than the STIG floor, naming the file and the key,
so that a security officer's typo stops start-up instead of silently loosening access.

STIG: V-222425 (the authorizations enforced are exactly the approved ones), V-222536 (password length floor),
V-222432 (lockout after at most three failures), V-222389 (idle timeout of at most 15 minutes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from appliance.access.policy import POLICY_FILES, PolicyError, load_policy


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped policy that a test may break."""
    target = tmp_path / "policies"
    shutil.copytree(Path(settings.POLICY_DIR), target)
    return target


def _replace(directory: Path, filename: str, old: str, new: str) -> None:
    path = directory / filename
    text = path.read_text("utf-8")
    assert old in text, f"the shipped {filename} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1), "utf-8")


def test_the_shipped_policy_loads() -> None:
    policy = load_policy(Path(settings.POLICY_DIR))
    assert set(policy.file_hashes) == set(POLICY_FILES)
    assert all(len(digest) == 64 for digest in policy.file_hashes.values())
    assert policy.roles
    assert policy.permissions
    assert policy.classification.levels
    assert policy.security.password.min_length >= 15
    assert policy.security.lockout_max_failures <= 3
    assert policy.security.idle_minutes <= 15


# (file, old text, new text, key the message must name)
BREAKAGES = [
    pytest.param("roles.toml", "[roles.analyst]", "[roles.analyst", "roles.toml", id="invalid-toml"),
    pytest.param(
        "roles.toml",
        'permissions = ["account.self", "dataset.view", "annotation.edit"]',
        'permissions = ["account.self", "dataset.view", "annotation.edit", "dataset.destroy"]',
        "roles.analyst.permissions",
        id="unknown-permission-in-role",
    ),
    pytest.param(
        "roles.toml",
        'mutually_exclusive = [["admin", "auditor"]]',
        'mutually_exclusive = [["admin", "overseer"]]',
        "separation_of_duties.mutually_exclusive",
        id="unknown-role-in-separation-of-duties",
    ),
    pytest.param(
        "roles.toml",
        'not_on_own_work = ["annotation.review", "export.approve"]',
        'not_on_own_work = ["annotation.review", "export.approve.self"]',
        "separation_of_duties.not_on_own_work",
        id="unknown-permission-in-own-work-rule",
    ),
    pytest.param(
        "roles.toml",
        '"dataset.view"          = { scope = "object"',
        '"dataset.view"          = { scope = "everywhere"',
        "permissions.dataset.view.scope",
        id="unknown-scope",
    ),
    pytest.param("security.toml", "min_length = 15 ", "min_length = 8 ", "password.min_length", id="password-length-8"),
    pytest.param(
        "security.toml",
        "require_special = true",
        "require_special = false",
        "password.require_special",
        id="special-character-not-required",
    ),
    pytest.param(
        "security.toml", "max_failures = 3 ", "max_failures = 5 ", "lockout.max_failures", id="lockout-after-5"
    ),
    pytest.param(
        "security.toml", "idle_minutes = 15 ", "idle_minutes = 30 ", "session.idle_minutes", id="idle-30-minutes"
    ),
    pytest.param(
        "security.toml",
        "admin = 10",
        "overseer = 10",
        "session.idle_minutes_by_role.overseer",
        id="idle-limit-for-unknown-role",
    ),
    pytest.param(
        "security.toml",
        'required_for_roles = ["admin", "auditor"]',
        'required_for_roles = ["admin", "root"]',
        "mfa.required_for_roles",
        id="mfa-for-unknown-role",
    ),
    pytest.param("security.toml", "min_length = 15 ", 'min_length = "15" ', "password.min_length", id="wrong-type"),
    pytest.param(
        "classification.toml", 'name = "CUI"', 'name = "UNCLASSIFIED"', "levels[1].name", id="duplicate-level"
    ),
    pytest.param(
        "classification.toml",
        'background = "#c8102e"',
        'background = "red"',
        "levels[3].background",
        id="bad-colour",
    ),
    pytest.param(
        "classification.toml",
        'page_level = "UNCLASSIFIED"',
        'page_level = "PUBLIC"',
        "system.page_level",
        id="unknown-page-level",
    ),
    pytest.param(
        "classification.toml",
        'ALPHA = "Demonstration compartment A"',
        'alpha = "lower case"',
        "compartments.alpha",
        id="lower-case-compartment",
    ),
]


@pytest.mark.parametrize(("filename", "old", "new", "key"), BREAKAGES)
def test_a_broken_policy_stops_loading_naming_file_and_key(
    policy_dir: Path, filename: str, old: str, new: str, key: str
) -> None:
    _replace(policy_dir, filename, old, new)
    with pytest.raises(PolicyError) as caught:
        load_policy(policy_dir)
    message = str(caught.value)
    assert filename in message
    assert key in message


def test_invalid_toml_names_the_line(policy_dir: Path) -> None:
    _replace(policy_dir, "roles.toml", "[roles.analyst]", "[roles.analyst")
    with pytest.raises(PolicyError, match=r"roles\.toml: not valid TOML: .*line \d+"):
        load_policy(policy_dir)


@pytest.mark.parametrize("filename", POLICY_FILES)
def test_a_missing_policy_file_stops_loading_naming_it(policy_dir: Path, filename: str) -> None:
    (policy_dir / filename).unlink()
    with pytest.raises(PolicyError, match="cannot read policy file") as caught:
        load_policy(policy_dir)
    assert str(policy_dir / filename) in str(caught.value)


def test_a_missing_key_is_named(policy_dir: Path) -> None:
    _replace(policy_dir, "security.toml", "window_minutes = 15 ", "")
    with pytest.raises(PolicyError, match=r"security\.toml: 'lockout\.window_minutes' is missing"):
        load_policy(policy_dir)


def test_a_stricter_policy_is_accepted(policy_dir: Path) -> None:
    """Sites may tighten the numbers: only weakening is refused."""
    _replace(policy_dir, "security.toml", "min_length = 15 ", "min_length = 20 ")
    _replace(policy_dir, "security.toml", "max_failures = 3 ", "max_failures = 2 ")
    _replace(policy_dir, "security.toml", "idle_minutes = 15 ", "idle_minutes = 5 ")
    policy = load_policy(policy_dir)
    assert policy.security.password.min_length == 20
    assert policy.security.lockout_max_failures == 2
    assert policy.security.idle_minutes == 5
