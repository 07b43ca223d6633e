"""Password rules from `policies/security.toml`: length, character classes, change distance, PBKDF2 work."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.exceptions import ValidationError

from appliance.access.policy import get_policy


class PolicyPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2-HMAC-SHA256 (FIPS-approved, V-222542) with the policy's iteration count."""

    def __init__(self) -> None:
        # Hashers are built on first use, after the access app has loaded the policy.
        self.iterations = get_policy().security.password.pbkdf2_iterations


def changed_positions(old: str, new: str) -> int:
    """How many character positions differ between two passwords (length difference counts as changes)."""
    return sum(1 for a, b in zip(old, new, strict=False) if a != b) + abs(len(old) - len(new))


def password_problems(password: str, *, previous: str | None = None) -> list[str]:
    """Every way `password` falls short of the policy, in words a user can act on; empty when it passes."""
    rules = get_policy().security.password
    problems = []
    if len(password) < rules.min_length:
        problems.append(f"must be at least {rules.min_length} characters long (V-222536)")
    if len(password) > rules.max_length:
        problems.append(f"must be at most {rules.max_length} characters long")
    if rules.require_uppercase and not any(c.isupper() for c in password):
        problems.append("must contain an upper-case letter (V-222537)")
    if rules.require_lowercase and not any(c.islower() for c in password):
        problems.append("must contain a lower-case letter (V-222538)")
    if rules.require_digit and not any(c.isdigit() for c in password):
        problems.append("must contain a digit (V-222539)")
    if rules.require_special and all(c.isalnum() for c in password):
        problems.append("must contain a special character (V-222540)")
    if previous is not None and changed_positions(previous, password) < rules.min_changed_characters:
        problems.append(f"must change at least {rules.min_changed_characters} characters of the old one (V-222541)")
    return problems


class PolicyPasswordValidator:
    """Django password validator backed by `password_problems`."""

    def validate(self, password: str, user: Any = None) -> None:
        problems = password_problems(password)
        if problems:
            raise ValidationError([f"The password {problem}." for problem in problems], code="password_policy")

    def get_help_text(self) -> str:
        rules = get_policy().security.password
        return (
            f"At least {rules.min_length} characters, with upper- and lower-case letters, a digit and a special "
            "character."
        )
