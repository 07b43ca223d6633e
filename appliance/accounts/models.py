"""The user (the access decision's subject) and personal API tokens."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{1,63}$"


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username=username)


class User(AbstractBaseUser):
    """A person. Roles, clearance and compartments are names from `policies/`; actions validate them."""

    username = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(USERNAME_PATTERN, "lower-case letters, digits, '.', '_' or '-'")],
    )
    display_name = models.CharField(max_length=150, blank=True)
    roles = models.JSONField(default=list)
    clearance = models.CharField(max_length=64)
    compartments = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)  # False: disabled by an admin, cannot sign in
    date_joined = models.DateTimeField(default=timezone.now)
    # Lockout state (V-222432/3): failures inside the policy window, and when the account was locked.
    failed_logins = models.PositiveIntegerField(default=0)
    first_failed_login_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None

    def describe(self) -> dict[str, Any]:
        """The account's security attributes, as privileged-action audit details carry them (no secrets)."""
        return {
            "username": self.username,
            "roles": sorted(self.roles),
            "clearance": self.clearance,
            "compartments": sorted(self.compartments),
            "active": self.is_active,
            "locked": self.is_locked,
        }


class ApiToken(models.Model):
    """A personal token for scripts. Only its SHA-256 is stored; the secret is shown once, at creation."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)  # shown in lists so the owner can tell tokens apart
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
