"""Signed checkpoints are appended by `record()` itself, every N records or T seconds, and cost O(records since).

STIG: V-222507 (cryptographic mechanisms protect the integrity of audit information): each checkpoint is an
Ed25519-signed commitment to the Merkle root of every record before it, made in the append's own transaction.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from appliance.access.policy import get_policy, install_policy
from appliance.auditlog.checkpoints import CheckpointRefused, make_checkpoint, newest
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record
from appliance.auditlog.signing import load_signing_key
from audit.checkpoint import open_checkpoint
from audit.merkle import CompactRange, root_of
from tests.auditlog.helpers import triggers_lifted

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path: Path) -> Path:
    settings.KEY_DIR = tmp_path / "keys"
    return settings.KEY_DIR


@pytest.fixture
def every(request) -> Iterator[None]:
    """Install a policy with other checkpoint intervals (records, seconds) for one test."""
    records, seconds = request.param
    original = get_policy()
    security = dataclasses.replace(
        original.security, checkpoint_every_records=records, checkpoint_every_seconds=seconds
    )
    install_policy(dataclasses.replace(original, security=security))
    yield
    install_policy(original)


def append(count: int) -> None:
    for _ in range(count):
        with transaction.atomic():
            record(action="session.test", details={"n": AuditRecord.objects.count()})


def leaves(size: int) -> list[bytes]:
    return [bytes(h) for h in AuditRecord.objects.filter(seq__lt=size).values_list("leaf_hash", flat=True)]


@pytest.mark.parametrize("every", [(5, 3600)], indirect=True)
@pytest.mark.usefixtures("every")
def test_a_checkpoint_is_appended_every_n_records():
    append(12)
    assert list(AuditCheckpoint.objects.values_list("size", flat=True)) == [5, 10]


@pytest.mark.parametrize("every", [(1000, 1)], indirect=True)
@pytest.mark.usefixtures("every")
def test_a_checkpoint_is_appended_once_the_interval_has_passed():
    append(2)
    assert newest() is None
    time.sleep(1.1)
    append(1)
    checkpoint = newest()
    assert checkpoint is not None
    assert checkpoint.size == 3


@pytest.mark.parametrize("every", [(4, 3600)], indirect=True)
@pytest.mark.usefixtures("every")
def test_the_checkpoint_signs_the_merkle_root_of_every_record_before_it():
    append(4)
    row = AuditCheckpoint.objects.get()
    key = load_signing_key().verifier
    signed = open_checkpoint(row.note, {key.key_id: key})
    assert signed.checkpoint.size == row.size == 4
    assert signed.checkpoint.root == bytes(row.root_hash) == root_of(leaves(4))
    assert signed.signers == (key.key_id,) == (row.key_id,)
    edge = [base64.b64decode(h) for h in json.loads(row.right_edge)]
    assert CompactRange.from_right_edge(4, edge).root() == root_of(leaves(4))


def test_the_next_checkpoint_reads_only_the_records_since_the_last():
    append(8)
    make_checkpoint(force=True)
    append(3)
    with CaptureQueriesContext(connection) as queries:
        make_checkpoint(force=True)
    reads = [
        q["sql"] for q in queries.captured_queries if "auditlog_auditrecord" in q["sql"] and "canonical" in q["sql"]
    ]
    assert len(reads) == 1
    assert ">= 8" in reads[0]
    assert newest().root_hash == root_of(leaves(11))


def test_forcing_with_nothing_new_returns_the_newest():
    append(2)
    first = make_checkpoint(force=True)
    assert make_checkpoint(force=True) == first
    assert AuditCheckpoint.objects.count() == 1


def test_an_empty_log_has_no_checkpoint():
    assert make_checkpoint(force=True) is None


@pytest.fixture
def without_triggers() -> Iterator[None]:
    with triggers_lifted():
        yield


@pytest.mark.usefixtures("without_triggers")
def test_a_checkpoint_never_vouches_for_a_tampered_tail():
    """An edited record since the last checkpoint is refused, naming it, instead of being signed."""
    append(3)
    AuditRecord.objects.filter(seq=1).update(canonical='{"forged":true}')
    with pytest.raises(CheckpointRefused, match="record 1: leaf hash"):
        make_checkpoint(force=True)


@pytest.mark.parametrize("every", [(3, 3600)], indirect=True)
@pytest.mark.usefixtures("every", "without_triggers")
def test_an_automatic_checkpoint_refusal_alerts_without_failing_the_action(caplog):
    append(2)
    AuditRecord.objects.filter(seq=0).update(canonical='{"forged":true}')
    with caplog.at_level(logging.CRITICAL, logger="appliance.audit"):
        append(1)
    assert AuditRecord.objects.count() == 3
    assert newest() is None
    assert "record 0: leaf hash" in caplog.text
