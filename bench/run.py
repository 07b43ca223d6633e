"""Run every benchmark in bench/ against its baseline (same run, same database) and print one line each:

    BENCH <name> ratio=<measured> goal=<target> <figures...>

Usage: `.venv/bin/python bench/run.py [name ...]`. A benchmark is any module `bench/<name>.py` (not starting with
`_`, not this file) with a `run() -> list[BenchResult]`. Benchmarks need PostgreSQL: DATABASE_URL, or else
postgres://postgres@127.0.0.1:5432/appliance_bench, created and migrated here if it does not exist yet.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/appliance_bench"


def ensure_database(url: str) -> None:
    """Create the benchmark database if it is missing (connecting to the server's `postgres` database)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    with psycopg.connect(
        host=parts.hostname or "", port=parts.port or 5432, user=unquote(parts.username or ""), dbname="postgres"
    ) as conn:
        conn.autocommit = True
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_") and p.stem != "run")


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "appliance.settings"
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    ensure_database(os.environ["DATABASE_URL"])

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    names = argv or discover()
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        for result in module.run():
            print(result.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
