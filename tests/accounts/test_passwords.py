"""Password rules and storage come from policies/security.toml (V-222536..V-222542)."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from appliance.access.policy import get_policy
from appliance.accounts.passwords import changed_positions, password_problems

GOOD = "Correct-Horse-Battery-9"


def test_a_password_meeting_every_rule_passes():
    assert password_problems(GOOD) == []
    validate_password(GOOD)


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Short-Pass-9", "V-222536"),  # 12 characters
        ("correct-horse-battery-9", "V-222537"),
        ("CORRECT-HORSE-BATTERY-9", "V-222538"),
        ("Correct-Horse-Battery-X", "V-222539"),
        ("CorrectHorseBattery9x", "V-222540"),
    ],
)
def test_each_rule_is_enforced_and_named(password, rule):
    """V-222536..V-222540: length 15 and the four character classes; the message cites the rule."""
    problems = password_problems(password)
    assert len(problems) == 1
    assert rule in problems[0]
    with pytest.raises(ValidationError):
        validate_password(password)


def test_a_fifteen_character_password_is_the_shortest_accepted():
    """V-222536: exactly the policy's minimum passes, one less does not."""
    minimum = get_policy().security.password.min_length
    assert minimum == 15
    assert password_problems("Aa1-" + "x" * (minimum - 4)) == []
    assert password_problems("Aa1-" + "x" * (minimum - 5)) != []


def test_a_new_password_must_change_eight_characters():
    """V-222541: a new password differing from the old in fewer than eight positions is refused."""
    assert changed_positions(GOOD, GOOD[:-1] + "8") == 1
    assert any("V-222541" in p for p in password_problems(GOOD[:-1] + "8", previous=GOOD))
    assert password_problems("Another-Strong-Phrase-7", previous=GOOD) == []


def test_passwords_are_stored_only_as_pbkdf2_with_the_policy_rounds(db):
    """V-222542: only a PBKDF2-HMAC-SHA256 hash (a FIPS-approved construction) is stored, never the password."""
    encoded = make_password(GOOD)
    algorithm, rounds, _salt, _digest = encoded.split("$")
    assert algorithm == "pbkdf2_sha256"
    assert int(rounds) == get_policy().security.password.pbkdf2_iterations
    assert GOOD not in encoded
    assert identify_hasher(encoded).algorithm == "pbkdf2_sha256"
    assert check_password(GOOD, encoded)
