"""Bulk NDJSON import and population screening, for bench/run.py (wraps bench_import_screen).

N = 10k and 100k (1M with LDNCARE_BENCH_MILLION=1, or 10k only with --quick), on SQLite and on
PostgreSQL when LDNCARE_TEST_POSTGRES_URL points at a server (scripts/start-postgres.sh).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench_import_screen import run_one
from common import Result, at_least, at_most, info
from generate_population import generate

from ldncare.importing import DEFAULT_BATCH


def bench_population(quick: bool) -> list[Result]:
    sizes = [10_000] if quick else [10_000, 100_000]
    if os.environ.get("LDNCARE_BENCH_MILLION") == "1":
        sizes.append(1_000_000)
    pg = os.environ.get("LDNCARE_TEST_POSTGRES_URL")
    dbs = ["sqlite"] + (["postgresql"] if pg else [])
    out: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ldncare-bench-") as tmp:
        work = Path(tmp)
        for n in sizes:
            folder = work / f"export-{n}"
            generate(folder, n)
            for db in dbs:
                r = run_one(db, folder, work, 3, DEFAULT_BATCH, pg)
                label = f"N={n:,} {db}"
                out.append(
                    at_least(
                        "population", f"import, {label}", r["patients_per_s"], "patients/s", 5000
                    )
                )
                out.append(info("population", f"import MB/s, {label}", r["mb_per_s"], "MB/s"))
                out.append(info("population", f"peak RSS, {label}", r["peak_rss_mb"], "MB"))
                screen = r["screen_s"]
                if n == 1_000_000:
                    out.append(at_most("population", f"screening, {label}", screen, "s", 10))
                else:
                    out.append(
                        info(
                            "population", f"screening, {label}", screen, "s", f"{r['hits']:,} hits"
                        )
                    )
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
    return out
