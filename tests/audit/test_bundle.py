"""The offline verifier against tampered bundles: each attack is detected and named (V-222481, AU-9).

These tests build bundles with the same writer the appliance uses, without Django, exactly as an auditor's host
would see them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.bundle import BundleError, TrustedCheckpoint, verify_bundle, write_bundle
from audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from audit.encoding import canonical_json, leaf_hash
from audit.merkle import CompactRange

ORIGIN = "appliance.test.example"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def make_record(seq: int) -> bytes:
    moment = T0 + timedelta(seconds=seq)
    return canonical_json(
        {
            "v": 1,
            "seq": seq,
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "component": "web",
            "actor": f"user{seq % 3}",
            "roles": ["analyst"],
            "session": "s1",
            "token": "",
            "request_id": f"r{seq}",
            "client_ip": "127.0.0.1",
            "action": "dataset.view",
            "object": {"type": "dataset", "id": str(seq % 5)},
            "label": "SECRET//ALPHA",
            "outcome": "ok",
            "details": {"n": seq},
        }
    )


def build(
    directory: Path, *, count: int = 25, every: int = 10, key: SigningKey | None = None, start: int = 0
) -> tuple[SigningKey, list[bytes]]:
    """Write a bundle of `count` records with a checkpoint every `every` records and one at the end."""
    key = key or SigningKey.generate(ORIGIN)
    records = [make_record(seq) for seq in range(count)]
    tree = CompactRange()
    checkpoints: list[tuple[int, str]] = []
    prefix: list[bytes] = []
    for seq, line in enumerate(records):
        if seq == start:
            prefix = tree.right_edge()
        tree.append(leaf_hash(line))
        size = seq + 1
        if size > start and (size % every == 0 or size == count):
            note = sign_checkpoint(
                Checkpoint(origin=ORIGIN, size=size, root=tree.root(), time=T0 + timedelta(seconds=size)), key
            )
            checkpoints.append((size, note))
    write_bundle(
        directory,
        origin=ORIGIN,
        start=start,
        records=iter(records[start:]),
        checkpoints=checkpoints,
        keys=[key.verifier],
        prefix_right_edge=prefix,
        exported_by="test",
        exported_at=T0 + timedelta(hours=1),
    )
    return key, records


def lines(bundle: Path) -> list[bytes]:
    return (bundle / "records.jsonl").read_bytes().splitlines()


def rewrite(bundle: Path, new_lines: list[bytes]) -> None:
    (bundle / "records.jsonl").write_bytes(b"".join(line + b"\n" for line in new_lines))


def refused(bundle: Path, trusted: TrustedCheckpoint | None = None) -> str:
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle, trusted=trusted)
    return str(caught.value)


def test_an_untouched_bundle_verifies(tmp_path):
    key, _ = build(tmp_path / "b")
    report = verify_bundle(tmp_path / "b")
    assert (report.records, report.checkpoints, report.end) == (25, 3, 25)
    assert report.signers == {key.verifier.key_id}


def test_an_edited_record_is_detected_and_its_checkpoint_range_named(tmp_path):
    build(tmp_path / "b")
    records = lines(tmp_path / "b")
    records[13] = records[13].replace(b'"actor":"user1"', b'"actor":"mallory"')
    rewrite(tmp_path / "b", records)
    assert "checkpoint of size 20" in (message := refused(tmp_path / "b"))
    assert "records 10..19" in message


def test_a_record_edited_into_non_canonical_form_is_named(tmp_path):
    build(tmp_path / "b")
    records = lines(tmp_path / "b")
    records[4] = records[4].replace(b'"v":1}', b'"v":1, "v":2}')
    rewrite(tmp_path / "b", records)
    assert "record 4 " in refused(tmp_path / "b")


def test_a_deleted_record_is_named(tmp_path):
    build(tmp_path / "b")
    records = lines(tmp_path / "b")
    del records[7]
    rewrite(tmp_path / "b", records)
    assert "record 7 is missing" in refused(tmp_path / "b")


def test_a_record_inserted_mid_log_is_named(tmp_path):
    build(tmp_path / "b")
    records = lines(tmp_path / "b")
    records.insert(12, records[11])
    rewrite(tmp_path / "b", records)
    assert "record 11 at line 13 is out of order or repeated" in refused(tmp_path / "b")


def test_two_reordered_records_are_named(tmp_path):
    build(tmp_path / "b")
    records = lines(tmp_path / "b")
    records[5], records[6] = records[6], records[5]
    rewrite(tmp_path / "b", records)
    assert "record 5 is missing" in refused(tmp_path / "b")


def test_a_truncated_tail_is_detected(tmp_path):
    build(tmp_path / "b")
    rewrite(tmp_path / "b", lines(tmp_path / "b")[:22])
    assert "ends at record 21" in refused(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["end"] = 22
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    assert "covers records beyond the bundle's end" in refused(tmp_path / "b")
    (tmp_path / "b" / "checkpoints" / f"{25:020d}.note").unlink()
    assert "records 20..21 are not covered by any checkpoint" in refused(tmp_path / "b")


def test_a_file_cut_mid_line_is_detected(tmp_path):
    build(tmp_path / "b")
    data = (tmp_path / "b" / "records.jsonl").read_bytes()
    (tmp_path / "b" / "records.jsonl").write_bytes(data[:-40])
    assert "truncated" in refused(tmp_path / "b")


def test_an_older_checkpoint_replayed_as_the_newest_is_detected(tmp_path):
    build(tmp_path / "b")
    folder = tmp_path / "b" / "checkpoints"
    shutil.copy(folder / f"{10:020d}.note", folder / f"{25:020d}.note")
    assert "replayed" in refused(tmp_path / "b")


def test_a_checkpoint_signed_by_another_key_is_named(tmp_path):
    build(tmp_path / "b")
    records = lines(tmp_path / "b")
    tree = CompactRange()
    for line in records[:20]:
        tree.append(leaf_hash(line))
    forged = sign_checkpoint(
        Checkpoint(origin=ORIGIN, size=20, root=tree.root(), time=T0 + timedelta(seconds=20)),
        SigningKey.generate(ORIGIN),
    )
    (tmp_path / "b" / "checkpoints" / f"{20:020d}.note").write_text(forged)
    message = refused(tmp_path / "b")
    assert "checkpoint 00000000000000000020.note" in message
    assert "not signed by a trusted key" in message


def test_a_log_rebuilt_with_a_new_key_is_detected_only_against_a_trusted_checkpoint(tmp_path):
    build(tmp_path / "old")
    first = verify_bundle(tmp_path / "old")
    assert first.newest is not None
    trusted = TrustedCheckpoint(note=first.newest.note, keys=list(first.trusted_keys.values()))

    # The attacker rebuilds the whole log and re-signs everything with a key of their own, keeping the origin.
    build(tmp_path / "forged", count=30)
    assert verify_bundle(tmp_path / "forged").records == 30  # self-consistent: nothing inside it can tell
    assert "not signed by a trusted key" in refused(tmp_path / "forged", trusted=trusted)


def test_a_history_rewrite_under_the_same_key_is_caught_by_the_trusted_checkpoint(tmp_path):
    key, _ = build(tmp_path / "old", count=20)
    first = verify_bundle(tmp_path / "old")
    assert first.newest is not None
    trusted = TrustedCheckpoint(note=first.newest.note, keys=[key.verifier])
    # Same key (stolen), different history: a larger log whose first 20 records differ.
    build(tmp_path / "later", count=30, key=key)
    records = lines(tmp_path / "later")
    assert verify_bundle(tmp_path / "later", trusted=trusted).records == 30  # honest growth verifies
    shutil.rmtree(tmp_path / "later")
    rewritten = [r.replace(b'"n":3}', b'"n":33}') for r in records]
    tree = CompactRange()
    checkpoints = []
    for size, line in enumerate(rewritten, start=1):
        tree.append(leaf_hash(line))
        if size % 10 == 0:
            checkpoints.append(
                (size, sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(), T0 + timedelta(seconds=size)), key))
            )
    write_bundle(
        tmp_path / "rewritten", origin=ORIGIN, start=0, records=iter(rewritten), checkpoints=checkpoints,
        keys=[key.verifier], prefix_right_edge=[], exported_by="x", exported_at=T0,
    )  # fmt: skip
    assert verify_bundle(tmp_path / "rewritten").records == 30
    assert "not consistent with the trusted checkpoint of size 20" in refused(tmp_path / "rewritten", trusted=trusted)


def test_a_shrunk_log_is_detected_against_the_trusted_checkpoint(tmp_path):
    key, _ = build(tmp_path / "big", count=30)
    report = verify_bundle(tmp_path / "big")
    assert report.newest is not None
    trusted = TrustedCheckpoint(note=report.newest.note, keys=[key.verifier])
    build(tmp_path / "small", count=20, key=key)
    assert "the log shrank" in refused(tmp_path / "small", trusted=trusted)


def test_a_bundle_exported_since_a_record_verifies_from_its_prefix(tmp_path):
    build(tmp_path / "b", count=45, start=12)
    report = verify_bundle(tmp_path / "b")
    assert (report.start, report.end, report.records) == (12, 45, 33)


def test_a_forged_prefix_is_detected(tmp_path):
    build(tmp_path / "b", count=45, start=12)
    prefix = json.loads((tmp_path / "b" / "prefix.json").read_text())
    prefix["right_edge"][0] = prefix["right_edge"][1]
    (tmp_path / "b" / "prefix.json").write_text(json.dumps(prefix))
    assert "signed root does not match" in refused(tmp_path / "b")


def test_the_command_line_exits_non_zero_naming_the_problem(tmp_path):
    build(tmp_path / "b")
    ok = subprocess.run([sys.executable, "-m", "audit", "verify", str(tmp_path / "b"), "--save-trusted",
                         str(tmp_path / "trusted.json")], capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "OK: log appliance.test.example: records 0..24 (25), 3 checkpoints" in ok.stdout
    records = lines(tmp_path / "b")
    del records[3]
    rewrite(tmp_path / "b", records)
    bad = subprocess.run([sys.executable, "-m", "audit", "verify", str(tmp_path / "b"), "--trusted-checkpoint",
                          str(tmp_path / "trusted.json")], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1
    assert "FAILED: record 3 is missing" in bad.stderr
