"""Verify now: the log is checked in chunks through POST /api/audit/verify/step, driven by the page's script.

Each chunk recomputes every leaf, checks `seq` density and the indexed columns, and rebuilds the Merkle root at
every checkpoint in its range. Progress travels as a signed token, so a client cannot skip records and still
get (and get recorded) an "ok". STIG: V-222503 (audit tools available to, and only to, auditors), V-222507
(integrity of audit information verified cryptographically), V-222487 (review).
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from appliance.auditlog.checkpoints import make_checkpoint
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record
from audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from audit.encoding import leaf_hash
from audit.merkle import CompactRange
from tests.conftest import sign_in

STEP = reverse("auditlog-api:verify-step")


def _post(client, body):
    return client.post(STEP, json.dumps(body), content_type="application/json")


@pytest.fixture
def log(db) -> int:
    """35 records with checkpoints at 12 and 30; returns the log's size."""
    for index in range(35):
        record(action="test.event", object_id=str(index))
        if AuditRecord.objects.count() in (12, 30):
            make_checkpoint(force=True)
    return AuditRecord.objects.count()


def _run(client, limit: int) -> list[dict]:
    answers = [_post(client, {"from": 0, "limit": limit}).json()]
    while not answers[-1]["done"]:
        last = answers[-1]
        answers.append(_post(client, {"from": last["checked"], "state": last["state"], "limit": limit}).json())
    return answers


def test_verification_runs_in_chunks_to_completion_and_is_recorded(client, auditor, log):
    sign_in(client, auditor)
    answers = _run(client, limit=10)
    total = answers[0]["total"]
    assert total == log  # the log as it was when the run started (its own start record comes after)
    assert [a["checked"] for a in answers] == [10, 20, 30, total]
    assert all(a["ok"] for a in answers)
    assert answers[-1]["done"]
    assert answers[-1]["state"] == ""
    checkpoints = AuditCheckpoint.objects.filter(size__lte=total).count()
    assert checkpoints >= 2
    assert answers[-1]["checkpoints"] == checkpoints
    bodies = [json.loads(r.canonical) for r in AuditRecord.objects.filter(action="audit.verify").order_by("seq")]
    assert [(b["actor"], b["outcome"], b["details"]["phase"]) for b in bodies] == [
        ("aud", "ok", "start"),
        ("aud", "ok", "end"),
    ]
    assert bodies[1]["details"] == {
        "phase": "end",
        "ok": True,
        "checked": total,
        "total": total,
        "checkpoints": checkpoints,
    }


def test_a_checkpoint_whose_root_the_records_do_not_give_fails_the_verification(client, auditor, log):
    AuditCheckpoint.objects.create(size=log, root_hash=b"\x01" * 32, time=timezone.now(), key_id="x", note="x")
    sign_in(client, auditor)
    answers = _run(client, limit=50_000)
    assert len(answers) == 1
    [answer] = answers
    assert answer["done"]
    assert not answer["ok"]
    assert answer["bad_seq"] == log - 1
    assert f"checkpoint {log}" in answer["problem"]
    end = json.loads(AuditRecord.objects.filter(action="audit.verify").order_by("-seq").first().canonical)
    assert end["outcome"] == "error"
    assert end["details"]["bad_seq"] == log - 1


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({}, "from"),
        ({"from": -1}, "from"),
        ({"from": "zero"}, "from"),
        ({"from": 10}, "state"),  # going on needs the state of the previous chunk
        ({"from": 10, "state": "forged"}, "state"),
        ({"from": 0, "limit": 50_001}, "limit"),
    ],
)
def test_bad_steps_are_a_400_naming_the_parameter(client, auditor, log, body, parameter):
    sign_in(client, auditor)
    response = _post(client, body)
    assert response.status_code == 400
    assert parameter in response.json()


def test_a_client_cannot_skip_records_with_a_state_from_elsewhere(client, auditor, log):
    sign_in(client, auditor)
    first = _post(client, {"from": 0, "limit": 10}).json()
    skipped = _post(client, {"from": 30, "state": first["state"], "limit": 10})
    assert skipped.status_code == 400
    assert "not 30" in skipped.json()["state"][0]


def test_the_page_loads_its_module_script_and_offers_verify_now(client, auditor, log):
    sign_in(client, auditor)
    html = client.get(reverse("auditlog:verify")).content.decode()
    assert '<script type="module" src="/static/auditlog/verify.js"></script>' in html
    assert f'data-step-url="{STEP}"' in html
    assert "Verify now" in html


def test_a_checkpoint_with_the_right_root_but_signed_by_a_foreign_key_fails_the_verification(client, auditor, log):
    """The step checks each checkpoint's signature as the offline verifier does, not only its root (V-222507)."""
    tree = CompactRange()
    for canonical in AuditRecord.objects.order_by("seq").values_list("canonical", flat=True):
        tree.append(leaf_hash(canonical.encode()))
    foreign = SigningKey.generate(settings.APPLIANCE_ID)
    moment = timezone.now().replace(microsecond=0)
    body = Checkpoint(origin=settings.APPLIANCE_ID, size=log, root=tree.root(), time=moment)
    AuditCheckpoint.objects.create(
        size=log, root_hash=body.root, time=moment, key_id=foreign.verifier.key_id, note=sign_checkpoint(body, foreign)
    )
    sign_in(client, auditor)
    [answer] = _run(client, limit=50_000)
    assert not answer["ok"]
    assert answer["problem"].startswith(f"checkpoint {log}: ")
    assert answer["bad_seq"] == log - 1
