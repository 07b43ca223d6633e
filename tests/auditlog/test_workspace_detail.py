"""One audit record (page and API): the full record, its leaf hash, and an inclusion proof against the newest
signed checkpoint that the server checks and that an auditor can re-check with `audit.merkle` alone.

STIG: V-222487 (review audit records), V-222500 (the read is itself recorded), V-222507 (cryptographic integrity
of audit information: the proof ties the record to a signed root).
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from appliance.auditlog.checkpoints import make_checkpoint
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record
from audit.encoding import leaf_hash
from audit.merkle import ProofError, verify_inclusion
from tests.conftest import sign_in


@pytest.fixture
def checkpointed(db) -> tuple[list[int], AuditCheckpoint]:
    """Twenty-one records (an odd tree), a signed checkpoint over them, then two records it does not cover."""
    seqs = [record(action="test.event", object_type="thing", object_id=str(i)).seq for i in range(21)]
    checkpoint = make_checkpoint(force=True)
    assert checkpoint is not None
    record(action="test.later")
    record(action="test.later")
    return seqs, checkpoint


@pytest.mark.parametrize("index", [0, 7, 20])
def test_the_api_gives_a_proof_that_verifies_against_the_signed_root(client, auditor, checkpointed, index):
    seqs, checkpoint = checkpointed
    seq = seqs[index]
    sign_in(client, auditor)
    body = client.get(reverse("auditlog-api:record", args=[seq])).json()
    row = AuditRecord.objects.get(seq=seq)
    assert body["record"] == json.loads(row.canonical)
    proof = body["proof"]
    assert proof["verified"] is True
    assert proof["checkpoint_size"] == checkpoint.size
    assert proof["checkpoint_root"] == bytes(checkpoint.root_hash).hex()
    leaf = leaf_hash(row.canonical.encode())
    assert proof["leaf_hash"] == leaf.hex()
    # The auditor's own check, with nothing but the kit: the proof leads to the root the checkpoint signs.
    verify_inclusion(
        seq, proof["checkpoint_size"], leaf, [bytes.fromhex(h) for h in proof["hashes"]], bytes(checkpoint.root_hash)
    )
    with pytest.raises(ProofError):
        verify_inclusion(
            seq,
            checkpoint.size,
            leaf_hash(b"{}"),
            [bytes.fromhex(h) for h in proof["hashes"]],
            bytes(checkpoint.root_hash),
        )


def test_the_page_shows_the_record_its_leaf_hash_and_a_verified_proof(client, auditor, checkpointed):
    seqs, checkpoint = checkpointed
    sign_in(client, auditor)
    response = client.get(reverse("auditlog:detail", args=[seqs[7]]))
    assert response.status_code == 200
    html = response.content.decode()
    row = AuditRecord.objects.get(seq=seqs[7])
    assert "&quot;object&quot;: {" in html  # pretty-printed, escaped
    assert leaf_hash(row.canonical.encode()).hex() in html
    assert response.context["proof"].verified
    assert len(response.context["proof_hashes"]) == 5  # a tree of 21 leaves is 5 levels deep
    for value in response.context["proof_hashes"]:
        assert value in html
    assert "Verified: this record is leaf" in html
    assert f"checkpoint {checkpoint.size} signs" in html


def test_a_record_newer_than_the_newest_checkpoint_says_it_is_not_yet_covered(client, auditor, checkpointed):
    sign_in(client, auditor)
    later = AuditRecord.objects.filter(action="test.later").order_by("seq").first()
    page = client.get(reverse("auditlog:detail", args=[later.seq]))
    assert page.status_code == 200
    assert "not yet covered by a checkpoint" in page.content.decode()
    assert client.get(reverse("auditlog-api:record", args=[later.seq])).json()["proof"] is None


def test_a_proof_that_does_not_reach_the_signed_root_is_shown_as_not_verified(client, auditor, checkpointed):
    """The server really checks: a checkpoint row whose root is not the tree's root fails the proof."""
    seqs, _checkpoint = checkpointed
    newest_size = AuditRecord.objects.count()
    AuditCheckpoint.objects.create(
        size=newest_size, root_hash=b"\x07" * 32, time=timezone.now(), key_id="forged", note="forged"
    )
    sign_in(client, auditor)
    page = client.get(reverse("auditlog:detail", args=[seqs[3]]))
    assert not page.context["proof"].verified
    assert "Not verified:" in page.content.decode()
    assert client.get(reverse("auditlog-api:record", args=[seqs[3]])).json()["proof"]["verified"] is False


def test_viewing_a_record_is_itself_recorded(client, auditor, checkpointed):
    seqs, _ = checkpointed
    sign_in(client, auditor)
    client.get(reverse("auditlog:detail", args=[seqs[2]]))
    client.get(reverse("auditlog-api:record", args=[seqs[4]]))
    bodies = [json.loads(r.canonical) for r in AuditRecord.objects.filter(action="audit.view").order_by("seq")]
    assert [(b["actor"], b["object"], b["component"]) for b in bodies] == [
        ("aud", {"type": "audit_record", "id": str(seqs[2])}, "web"),
        ("aud", {"type": "audit_record", "id": str(seqs[4])}, "api"),
    ]


def test_a_missing_record_is_a_404(client, auditor, checkpointed):
    sign_in(client, auditor)
    assert client.get(reverse("auditlog:detail", args=[10_000])).status_code == 404
    assert client.get(reverse("auditlog-api:record", args=[10_000])).status_code == 404
