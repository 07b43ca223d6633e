"""Privileged writes on the audit log itself (the log's own records go through recorder.record)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from appliance.auditlog.checkpoints import complete_interrupted_rotation, deferred, make_rotation_checkpoint
from appliance.auditlog.locking import hold_append_lock
from appliance.auditlog.recorder import record
from appliance.auditlog.signing import finish_rotation, load_signing_key, prepare_rotation


@dataclass(frozen=True)
class Rotation:
    old_key_id: str
    new_key_id: str
    checkpoint_size: int


def rotate_signing_key() -> Rotation:
    """Replace the audit signing key: a new key, announced by a checkpoint signed by the old and the new key.

    The rotation's own record (`audit.key_rotated`, key ids only) is appended with the lock held and automatic
    checkpoints deferred, so that the announcing checkpoint covers it. The old public key stays known, so old
    checkpoints still verify; a crash between the checkpoint and the key switch is completed on the next call.
    """
    complete_interrupted_rotation()
    old = load_signing_key()
    new = prepare_rotation()
    with transaction.atomic(), deferred():
        hold_append_lock()  # the record is appended here, never staged behind another writer
        record(
            action="audit.key_rotated",
            object_type="audit_key",
            object_id=new.verifier.key_id,
            details={"old_key_id": old.verifier.key_id, "new_key_id": new.verifier.key_id},
        )
        checkpoint = make_rotation_checkpoint(old=old, new=new)
    finish_rotation(old.verifier)
    return Rotation(old.verifier.key_id, new.verifier.key_id, checkpoint.size)
