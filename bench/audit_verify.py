"""Cost of verifying an audit bundle: `audit.bundle.verify_bundle` against bare SHA-256 over the same lines.

The auditor verifies an exported bundle on their own host with `python -m audit verify`; a bundle of a busy
appliance holds millions of records, so the verifier must not be the reason an auditor skips the check. The
baseline is the least any verifier must do: read every line of `records.jsonl` from the same file and compute its
leaf hash, SHA-256(0x00 ‖ line). The ratio is verify_rate / bare_rate; the goal is 0.25.

`verify_bundle` runs as `python -m audit verify` does by default: records checked in chunks, in one worker
process per CPU. A `--strict` run (every record's canonical form checked too) is reported alongside, not against
the goal.

The bundle holds N realistic records (several actions, actors, labels and detail shapes, times growing by a few
milliseconds) with a signed checkpoint every 1,000 records, written by `audit.bundle.write_bundle` exactly as an
export does. Generating it takes longer than verifying it, so it is cached under /tmp keyed by N and by this
generator's version; delete the folder to rebuild it. Standalone: `.venv/bin/python -m bench.audit_verify [N]`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.bundle import verify_bundle, worker_count, write_bundle
from audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from audit.encoding import canonical_json, leaf_hash
from audit.merkle import CompactRange
from bench._common import BenchResult

GOAL = 0.25
N = 1_000_000
CHECKPOINT_EVERY = 1_000
GENERATOR_VERSION = 2
ORIGIN = "bench.appliance.example"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
ROUNDS = 2  # bare and verify alternate, so that drift on a shared machine falls on both alike

_ACTIONS = (
    ("dataset.view", "dataset", "ok"),
    ("item.view", "item", "ok"),
    ("annotation.update", "annotation", "ok"),
    ("annotation.create", "annotation", "ok"),
    ("access.denied", "dataset", "denied"),
    ("auth.login", "user", "ok"),
    ("auth.login", "user", "denied"),
    ("export.request", "export", "ok"),
)
_LABELS = ("UNCLASSIFIED", "SECRET//ALPHA", "SECRET//ALPHA/BRAVO", "TOP SECRET//BRAVO")
_ROLES = (["analyst"], ["reviewer"], ["manager"], ["analyst", "reviewer"])


def _body(seq: int) -> dict[str, object]:
    """One record of the shape `appliance.auditlog.recorder.record` writes, varied deterministically by seq."""
    action, object_type, outcome = _ACTIONS[seq % len(_ACTIONS)]
    user = seq % 97
    moment = T0 + timedelta(microseconds=seq * 3_217)
    details: dict[str, object]
    if action == "annotation.update":
        details = {"shape": "box", "points": [seq % 640, seq % 480, seq % 640 + 32, seq % 480 + 24], "version": seq}
    elif action == "access.denied":
        details = {"permission": "dataset.view", "gate": "label", "path": f"/api/datasets/{seq % 211}"}
    elif action == "auth.login":
        details = {"method": "password+totp", "failures": seq % 3}
    else:
        details = {"n": seq, "dataset": seq % 211}
    return {
        "v": 1,
        "seq": seq,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "component": "api" if seq % 3 else "web",
        "actor": f"user{user:03d}",
        "roles": _ROLES[user % len(_ROLES)],
        "session": f"s{user:03d}-{seq // 5000:05d}",
        "token": "",
        "request_id": f"{seq * 0x9E3779B97F4A7C15 % 2**128:032x}",  # uuid4().hex-like
        "client_ip": f"10.1.{user}.{seq % 250 + 1}",
        "action": action,
        "object": {"type": object_type, "id": str(seq % 100_003)},
        "label": _LABELS[seq % len(_LABELS)],
        "outcome": outcome,
        "details": details,
    }


def _lines(n: int) -> Iterator[bytes]:
    """Canonical record lines. The records are ASCII with small integers, where the C encoder with sorted keys and
    no spaces is exactly RFC 8785; the first records are cross-checked against the reference encoder."""
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    for seq in range(n):
        body = _body(seq)
        line = dumps(body).encode()
        if seq < 100:
            assert line == canonical_json(body), "the generator's fast encoding must be canonical"
        yield line


def build_bundle(n: int) -> Path:
    """Return a verified-shape bundle of n records, building it under /tmp only if it is not cached yet."""
    cache = Path(tempfile.gettempdir()) / f"appliance-bench-audit-verify-v{GENERATOR_VERSION}-{n}"
    bundle = cache / "bundle"
    if (bundle / "manifest.json").exists():
        return bundle
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    key = SigningKey.generate(ORIGIN)
    tree = CompactRange()
    checkpoints: list[tuple[int, str]] = []

    def records() -> Iterator[bytes]:
        for line in _lines(n):
            tree.append(leaf_hash(line))
            if tree.size % CHECKPOINT_EVERY == 0 or tree.size == n:
                when = T0 + timedelta(microseconds=tree.size * 3_217, seconds=1)
                checkpoints.append((tree.size, sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root(), when), key)))
            yield line

    # write_bundle writes the checkpoint files after the records, so the generator above has filled the list by then.
    staging = cache / "staging"
    write_bundle(
        staging,
        origin=ORIGIN,
        start=0,
        records=records(),
        checkpoints=checkpoints,
        keys=[key.verifier],
        prefix_right_edge=[],
        exported_by="bench",
        exported_at=T0 + timedelta(days=1),
    )
    staging.rename(bundle)
    return bundle


def bare_hash(path: Path) -> int:
    """The baseline: read every line of the file and compute its leaf hash; nothing else."""
    sha256 = hashlib.sha256
    count = 0
    with path.open("rb") as handle:
        for raw in handle:
            sha256(b"\x00" + raw[:-1]).digest()
            count += 1
    return count


def measure(n: int = N) -> BenchResult:
    bundle = build_bundle(n)
    records = bundle / "records.jsonl"
    bare_seconds = verify_seconds = 0.0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        assert bare_hash(records) == n
        bare_seconds += time.perf_counter() - started
        started = time.perf_counter()
        report = verify_bundle(bundle)
        verify_seconds += time.perf_counter() - started
        assert report.records == n
        assert report.checkpoints == -(-n // CHECKPOINT_EVERY)
    # For the record, not the goal: --strict also re-encodes every record to check its canonical form.
    started = time.perf_counter()
    assert verify_bundle(bundle, strict=True).records == n
    strict_rate = n / (time.perf_counter() - started)
    bare_rate, verify_rate = ROUNDS * n / bare_seconds, ROUNDS * n / verify_seconds
    return BenchResult(
        name="audit_verify",
        ratio=verify_rate / bare_rate,
        goal=GOAL,
        figures={
            "verify": f"{verify_rate:.0f}/s",
            "bare": f"{bare_rate:.0f}/s",
            "n": str(n),
            "workers": str(worker_count(bundle / "records.jsonl", None)),
            "strict": f"{strict_rate:.0f}/s",
            "strict_ratio": f"{strict_rate / bare_rate:.3f}",
        },
    )


def run() -> list[BenchResult]:
    return [measure()]


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else N).line(), flush=True)
