"""The chunked verifier (the default) against the line-by-line one: same verdict and same message on every bundle,
in this process and in worker processes, and exactly the guarantees docs/formats/audit-bundle.md states for
records that were signed as they are (V-222481, AU-9)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from audit.bundle import BundleError, verify_bundle, write_bundle
from audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from audit.encoding import canonical_json, leaf_hash
from audit.merkle import CompactRange
from tests.audit.test_bundle import ORIGIN, T0, build, lines, make_record, rewrite

SMALL_CHUNKS = 997  # bytes: three or four records a chunk, so chunk ends fall everywhere


def outcome(bundle: Path, **mode: object) -> str:
    try:
        report = verify_bundle(bundle, **mode)  # type: ignore[arg-type]
    except BundleError as exc:
        return f"refused: {exc}"
    return f"ok: {report.records} records, {report.checkpoints} checkpoints, newest {report.newest.checkpoint.size}"  # type: ignore[union-attr]


def signed_bundle(directory: Path, records: list[bytes], every: int = 10) -> None:
    """A bundle whose checkpoints sign `records` exactly as given: what a writer that produced them would export."""
    key = SigningKey.generate(ORIGIN)
    tree, checkpoints = CompactRange(), []
    for size, line in enumerate(records, start=1):
        tree.append(leaf_hash(line))
        if size % every == 0 or size == len(records):
            when = T0 + timedelta(seconds=size)
            checkpoints.append((size, sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(), when), key)))
    write_bundle(
        directory, origin=ORIGIN, start=0, records=iter(records), checkpoints=checkpoints, keys=[key.verifier],
        prefix_right_edge=[], exported_by="test", exported_at=T0 + timedelta(hours=1),
    )  # fmt: skip


def record(seq: int, **changes: object) -> dict:
    body = json.loads(make_record(seq))
    body.update(changes)
    return body


def test_every_mode_verifies_an_untouched_bundle_alike(tmp_path):
    build(tmp_path / "b", count=400, every=25, start=37)
    reference = outcome(tmp_path / "b", workers=0)
    assert reference == "ok: 363 records, 15 checkpoints, newest 400"
    assert outcome(tmp_path / "b") == reference
    assert outcome(tmp_path / "b", workers=1, chunk_bytes=SMALL_CHUNKS) == reference
    assert outcome(tmp_path / "b", workers=2, chunk_bytes=SMALL_CHUNKS) == reference
    assert outcome(tmp_path / "b", workers=2, chunk_bytes=SMALL_CHUNKS, strict=True) == reference


def _corrupt(rng: random.Random, data: bytes) -> bytes:
    records = data.split(b"\n")[:-1]
    kind = rng.randrange(8)
    at = rng.randrange(len(records))
    if kind == 0:  # one byte changed
        line = bytearray(records[at])
        line[rng.randrange(len(line))] = rng.choice(b'{}[]":,0123456789 az\\')
        records[at] = bytes(line)
    elif kind == 1:
        del records[at]
    elif kind == 2:
        records.insert(at, records[rng.randrange(len(records))])
    elif kind == 3:
        other = rng.randrange(len(records))
        records[at], records[other] = records[other], records[at]
    elif kind == 4:  # cut anywhere, possibly mid-line
        return data[: rng.randrange(len(data))]
    elif kind == 5:
        records[at] = records[at].replace(b",", b", ", 1)
    elif kind == 6:
        records[at] = records[at].replace(b'"v":1}', b'"v":1,"seq":0}')
    else:
        records[at] = records[at] + b" "
    return b"".join(line + b"\n" for line in records)


def test_the_chunked_verifier_refuses_every_corruption_the_line_by_line_one_does_in_the_same_words(tmp_path):
    build(tmp_path / "b", count=240, every=20)
    original = (tmp_path / "b" / "records.jsonl").read_bytes()
    rng = random.Random(9162)  # noqa: S311  # reproducible damage, not secrecy
    for case in range(160):
        damaged = _corrupt(rng, original)
        (tmp_path / "b" / "records.jsonl").write_bytes(damaged)
        reference = outcome(tmp_path / "b", workers=0)
        assert outcome(tmp_path / "b", workers=1, chunk_bytes=SMALL_CHUNKS) == reference, case
        if case % 16 == 0:  # worker processes too, less often (each starts a pool)
            assert outcome(tmp_path / "b", workers=2, chunk_bytes=SMALL_CHUNKS) == reference, case


def test_a_signed_record_with_a_second_seq_member_is_refused_and_named(tmp_path):
    records = [make_record(seq) for seq in range(30)]
    records[14] = records[14].replace(b'{"action"', b'{"seq":3,"action"')
    signed_bundle(tmp_path / "b", records)
    message = outcome(tmp_path / "b", workers=1, chunk_bytes=SMALL_CHUNKS)
    assert message == outcome(tmp_path / "b", workers=0)
    assert "record 14 (records.jsonl line 15) is not in canonical form" in message


def test_a_signed_record_naming_seq_through_an_escape_is_refused_and_named(tmp_path):
    records = [make_record(seq) for seq in range(30)]
    records[6] = records[6].replace(b'{"action"', b'{"se\\u0071":99,"action"')
    signed_bundle(tmp_path / "b", records)
    assert "record 6 (records.jsonl line 7)" in outcome(tmp_path / "b", workers=1, chunk_bytes=SMALL_CHUNKS)


def test_canonical_records_with_escapes_non_ascii_text_or_nested_seq_and_time_verify(tmp_path):
    """Records the fast reading does not cover are checked in full, and verify when they are canonical."""
    bodies = [record(seq) for seq in range(40)]
    bodies[3]["details"] = {"time": "2026-01-01T00:00:00Z", "seq": 12}
    bodies[11]["label"] = 'SECRET//ALPHA "quoted"\\path'
    bodies[20]["actor"] = "jürgen"
    bodies[27]["details"] = {"note": "line\nbreak\u2028"}
    signed_bundle(tmp_path / "b", [canonical_json(body) for body in bodies])
    assert outcome(tmp_path / "b", workers=0) == "ok: 40 records, 4 checkpoints, newest 40"
    assert outcome(tmp_path / "b", workers=1, chunk_bytes=SMALL_CHUNKS) == "ok: 40 records, 4 checkpoints, newest 40"
    assert outcome(tmp_path / "b", workers=1, strict=True) == "ok: 40 records, 4 checkpoints, newest 40"


@pytest.mark.parametrize(
    "damage",
    [
        lambda line: line.replace(b",", b", ", 1),  # whitespace
        lambda line: line.replace(
            b'{"action":"dataset.view","actor":"user1"', b'{"actor":"user1","action":"dataset.view"'
        ),
        lambda line: b'{"not json' + line[line.index(b',"seq":') :],  # not JSON at all before the v1 tail
    ],
)
def test_a_signed_non_canonical_record_passes_by_default_and_is_named_by_strict(tmp_path, damage):
    """The documented limit of the default: a line signed as it is, with the version-1 tail and a unique seq and
    time, is authenticated byte for byte but not checked for canonical form; `strict` (--strict) checks it."""
    records = [make_record(seq) for seq in range(30)]
    records[4] = damage(records[4])
    signed_bundle(tmp_path / "b", records)
    assert outcome(tmp_path / "b", workers=1, chunk_bytes=SMALL_CHUNKS).startswith("ok: 30 records")
    assert "record 4 (records.jsonl line 5)" in outcome(tmp_path / "b", workers=1, strict=True)
    assert "record 4 (records.jsonl line 5)" in outcome(tmp_path / "b", workers=0)


def test_an_edit_after_signing_is_refused_in_the_same_words_by_every_mode(tmp_path):
    build(tmp_path / "b", count=60, every=10)
    records = lines(tmp_path / "b")
    records[33] = records[33].replace(b'"actor":"user0"', b'"actor":"mallory"')
    rewrite(tmp_path / "b", records)
    reference = outcome(tmp_path / "b", workers=0)
    assert "checkpoint of size 40" in reference
    assert outcome(tmp_path / "b", workers=2, chunk_bytes=SMALL_CHUNKS) == reference
    assert outcome(tmp_path / "b", workers=1, strict=True) == reference
