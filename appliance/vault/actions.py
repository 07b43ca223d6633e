"""Every write to the key hierarchy, each in one transaction with its audit record (no key operation unrecorded).

The acting person is whoever the audit context names (the request's user, `os:<name>` for a command): the vault
sits below `accounts` and never sees a User. Callers authorize first: `datasets` creates and destroys a dataset's
key inside its own audited action; KEK rotation is an operator's command. Audit details name keys by id only,
never by their bytes.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from appliance.auditlog.recorder import record
from appliance.vault.keys import DEK_SIZE, KeyProvider, configured_provider
from appliance.vault.models import PURPOSE_MAX_LENGTH, DataKey

OBJECT_TYPE = "data_key"


class VaultError(Exception):
    """A key operation refused: a destroyed key, a key under an unexpected KEK, a bad argument."""


def create_data_key(*, purpose: str, provider: KeyProvider | None = None) -> DataKey:
    """A fresh random 32-byte DEK, stored only wrapped under the provider's KEK (default: the configured one).

    `purpose` says what the key protects (e.g. "dataset:42"); it is public and recorded.
    """
    cleaned = purpose.strip()
    if not cleaned or len(cleaned) > PURPOSE_MAX_LENGTH:
        raise VaultError(f"a data key needs a purpose of 1 to {PURPOSE_MAX_LENGTH} characters")
    provider = provider or configured_provider()
    wrapped = provider.wrap(secrets.token_bytes(DEK_SIZE))
    with transaction.atomic():
        key = DataKey.objects.create(
            purpose=cleaned, wrapped=wrapped, kek_provider=provider.name, kek_id=provider.key_id
        )
        record(
            action="vault.key.create",
            object_type=OBJECT_TYPE,
            object_id=key.pk,
            details={"purpose": cleaned, "kek_provider": provider.name, "kek_id": provider.key_id},
        )
    return key


def destroy_data_key(*, key: DataKey, reason: str) -> DataKey:
    """Crypto-shred `key`: wipe its wrapped bytes so that no KEK can ever unwrap it again; audited with `reason`.

    Every blob under it becomes unreadable at once, whatever copies of the blob files exist.
    """
    if not reason.strip():
        raise VaultError("destroying a data key needs a reason for the record")
    with transaction.atomic():
        row = DataKey.objects.select_for_update().get(pk=key.pk)
        if row.is_destroyed:
            raise VaultError(f"data key {row.pk} was already destroyed at {row.destroyed_at:%Y-%m-%dT%H:%M:%SZ}")
        row.wrapped = b""
        row.destroyed_at = timezone.now()
        row.save(update_fields=["wrapped", "destroyed_at"])
        record(
            action="vault.key.destroy",
            object_type=OBJECT_TYPE,
            object_id=row.pk,
            details={"purpose": row.purpose, "kek_id": row.kek_id, "reason": reason.strip()},
        )
    key.wrapped, key.destroyed_at = row.wrapped, row.destroyed_at
    return key


def rotate_kek(*, old: KeyProvider, new: KeyProvider) -> dict[str, int]:
    """Rewrap every live DEK from `old`'s KEK to `new`'s, all in one transaction, audited `vault.kek.rotate`.

    Keys already under `new` are left alone, so a rotation can be run again to catch keys that a process still
    using the old KEK created meanwhile. A live key under any third KEK stops the rotation before anything is
    written: it would otherwise be stranded when the old KEK is retired. Each new wrapping is unwrapped again
    before it is stored, so a faulty provider cannot silently replace a key with garbage.
    Returns the counts that the audit record holds.
    """
    if old.key_id == new.key_id:
        raise VaultError(f"the new KEK is the old one ({old.key_id}); nothing to rotate")
    now = timezone.now()
    with transaction.atomic():
        live = list(DataKey.objects.select_for_update().filter(destroyed_at__isnull=True).order_by("pk"))
        stranded = sorted({key.kek_id for key in live} - {old.key_id, new.key_id})
        if stranded:
            raise VaultError(
                f"live data keys are wrapped under KEK(s) {', '.join(stranded)}, neither the old KEK {old.key_id} "
                f"nor the new {new.key_id}; nothing was rewrapped"
            )
        rewrap = [key for key in live if key.kek_id == old.key_id]
        for key in rewrap:
            dek = old.unwrap(key.wrapped_bytes())
            wrapped = new.wrap(dek)
            if new.unwrap(wrapped) != dek:
                raise VaultError(f"data key {key.pk} did not survive rewrapping under {new.key_id}; nothing changed")
            key.wrapped, key.kek_provider, key.kek_id, key.rewrapped_at = wrapped, new.name, new.key_id, now
        DataKey.objects.bulk_update(rewrap, ["wrapped", "kek_provider", "kek_id", "rewrapped_at"], batch_size=500)
        counts = {
            "rewrapped": len(rewrap),
            "already_current": len(live) - len(rewrap),
            "destroyed": DataKey.objects.filter(destroyed_at__isnull=False).count(),
        }
        record(
            action="vault.kek.rotate",
            object_type="kek",
            object_id=new.key_id,
            details={
                "old_kek_id": old.key_id,
                "old_kek_provider": old.name,
                "new_kek_id": new.key_id,
                "new_kek_provider": new.name,
                **counts,
            },
        )
    return counts
