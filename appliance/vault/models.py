"""Data keys (DEKs), as the database holds them: only ever wrapped under a KEK, never in plaintext.

One DataKey per dataset (or per other owner of blobs, named by `purpose`). Destroying one wipes its wrapped bytes
and keeps the row as a tombstone, so that every blob encrypted under it is unreadable from then on
(crypto-shredding) while the record of which key existed, under which KEK, and when it was destroyed remains. A
check constraint keeps the two states apart: live rows have wrapped bytes and no `destroyed_at`, destroyed rows
the reverse.

Wiping a column is not erasure of the disk pages or backups that held it; the KEK rotation after a destruction
is what makes such old copies worthless (docs/formats/blob.md, "Crypto-shredding").
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

PURPOSE_MAX_LENGTH = 200


class DataKey(models.Model):
    """A DEK wrapped (RFC 3394) under the KEK named by `kek_provider` and `kek_id`."""

    purpose = models.CharField(max_length=PURPOSE_MAX_LENGTH)
    wrapped = models.BinaryField(max_length=64, editable=False)
    kek_provider = models.CharField(max_length=16)
    kek_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    rewrapped_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(destroyed_at__isnull=True) & ~models.Q(wrapped=b""))
                | (models.Q(destroyed_at__isnull=False) & models.Q(wrapped=b"")),
                name="vault_datakey_wrapped_iff_live",
            )
        ]

    def __str__(self) -> str:
        return f"data key {self.pk} ({self.purpose})"

    def __repr__(self) -> str:
        state = "destroyed" if self.is_destroyed else "live"
        return f"<DataKey {self.pk} purpose={self.purpose!r} kek={self.kek_provider}:{self.kek_id} {state}>"

    @property
    def is_destroyed(self) -> bool:
        return self.destroyed_at is not None

    def wrapped_bytes(self) -> bytes:
        """The wrapped DEK as bytes (PostgreSQL hands BinaryField values back as memoryview)."""
        return bytes(self.wrapped)
