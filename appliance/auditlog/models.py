"""Audit tables. Append-only: triggers (see `triggers.py`) refuse UPDATE, DELETE and TRUNCATE on both databases.

`canonical` is the record itself (RFC 8785 JSON) and the only thing that is hashed; the other columns are copies
of its fields for indexed search, and `audit verify` checks that they still agree with it.
"""

from __future__ import annotations

from django.db import models


class AuditRecord(models.Model):
    seq = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, db_index=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=255, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    canonical = models.TextField()
    leaf_hash = models.BinaryField(max_length=32)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.outcome}"


class AuditStaged(models.Model):
    """A record committed with its action but not yet given its place (`seq`) in the log.

    When another transaction holds the append lock, `record()` stages the record here instead of waiting, in the
    action's own transaction, so the record is as durable as the action and concurrent actions commit in parallel
    (as PostgreSQL groups their commits) instead of one behind the other. Right after each commit the sequencer
    moves staged records into the log in batches and deletes them here, in one transaction (see sequencer.py): the
    queue that Trillian calls "unsequenced" entries. UPDATE is refused by trigger; DELETE is the sequencer's.
    """

    id = models.BigAutoField(primary_key=True)
    body = models.TextField()  # canonical JSON of the record without `seq` and `time`, which sequencing adds

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"staged audit record {self.id}"


class AuditCheckpoint(models.Model):
    """A signed commitment to the log's first `size` records (C2SP signed note); append-only like the records.

    `note` is the only authoritative column: `size`, `root_hash`, `time`, `key_id` and `rotate_to` are copies of
    what it signs, for queries, and the verifier checks that they agree with it. `right_edge` (a JSON list of
    base64 hashes, the perfect subtrees of the first `size` leaves, largest first) lets the next checkpoint and
    the start-up self-check continue the tree from here in O(records since) instead of re-reading the log; it is
    authenticated by recomputing this checkpoint's signed root from it.
    """

    size = models.BigIntegerField(primary_key=True)
    root_hash = models.BinaryField(max_length=32)
    time = models.DateTimeField()
    key_id = models.CharField(max_length=255)  # the key that signed it (the old key of a rotation)
    note = models.TextField()
    right_edge = models.TextField(default="[]")
    rotate_to = models.CharField(max_length=255, blank=True, default="")  # verifier key text a rotation announces

    class Meta:
        ordering = ["size"]

    def __str__(self) -> str:
        return f"checkpoint {self.size}"
