"""`python -m audit verify BUNDLE [--trusted-checkpoint FILE] [--save-trusted FILE]`: the auditor's verifier.

Needs only Python and `cryptography`. Exits 0 when the bundle verifies, 1 naming the first bad record or
checkpoint, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audit.bundle import BundleError, TrustedCheckpoint, verify_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify an exported audit bundle")
    verify.add_argument("bundle", type=Path, help="the bundle folder written by `manage.py audit export`")
    verify.add_argument(
        "--trusted-checkpoint",
        type=Path,
        help="a checkpoint saved by an earlier verification (--save-trusted), kept off the appliance",
    )
    verify.add_argument(
        "--strict",
        action="store_true",
        help="also check that every record is exactly its canonical encoding (RFC 8785), not only the records the "
        "fast reading does not cover; slower",
    )
    verify.add_argument(
        "--workers",
        type=int,
        help="processes that check records (default: one per CPU for a large bundle; 0: line by line only)",
    )
    verify.add_argument(
        "--save-trusted",
        type=Path,
        help="after success, save the newest checkpoint and its keys here for the next verification",
    )
    args = parser.parse_args(argv)

    trusted = TrustedCheckpoint.load(args.trusted_checkpoint) if args.trusted_checkpoint else None
    try:
        report = verify_bundle(
            args.bundle,
            trusted=trusted,
            progress=lambda n: print(f"  {n} records", file=sys.stderr),
            strict=args.strict,
            workers=args.workers,
        )
    except BundleError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    newest = report.newest
    if newest is None:  # verify_bundle refuses a bundle without a final checkpoint; never reached
        return 1
    print(
        f"OK: log {report.origin}: records {report.start}..{report.end - 1} ({report.records}), "
        f"{report.checkpoints} checkpoints, signed by {', '.join(sorted(report.signers))}"
    )
    if trusted is None:
        print(
            "note: no trusted checkpoint given; the log's first key was taken from the bundle itself. A log rebuilt "
            "end to end with another key is only detected against a checkpoint you kept (--trusted-checkpoint)."
        )
    if args.save_trusted:
        TrustedCheckpoint(note=newest.note, keys=list(report.trusted_keys.values())).save(args.save_trusted)
        print(f"saved the newest checkpoint (size {newest.checkpoint.size}) to {args.save_trusted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
