"""Benchmark Bulk NDJSON import and population screening (issue 8, benchmark 3).

For each N (10k and 100k; 1M with ``--million``) a synthetic export is generated
(``bench/generate_population.py``, not timed), then imported into a fresh database and screened,
on SQLite and, when ``LDNCARE_TEST_POSTGRES_URL`` (or ``--postgres URL``) is set, PostgreSQL.
Each import runs in its own process so that its peak RSS is its own. Prints a table:

- import patients/s and MB/s (NDJSON bytes read / wall time of ``import_ndjson``, which
  includes loading the evidence base and vocabulary once);
- peak RSS of the worker process and its RSS before the import (the difference is what the
  import itself costs; it must not grow with N);
- screening time: median of ``--repeat`` runs of ``screen_population`` over the stored patients.

Targets (issue 8): import >= 5,000 patients/s, memory flat in N, screening of 1M <= 10 s.

Run: ``.venv/bin/python bench/bench_import_screen.py [--sizes 10000 100000] [--million]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from common import scratch_database

try:
    from ldncare.importing import DEFAULT_BATCH
except ImportError:  # a --baseline-src tree from before the importer was split by job
    from ldncare.fhir.importer import DEFAULT_BATCH  # type: ignore[import-not-found,import-untyped,no-redef,unused-ignore]

HERE = Path(__file__).resolve().parent
AS_OF = date(2026, 6, 1)


def _rss_mb() -> float:
    """Peak RSS of this process image (MB). VmHWM, not ``ru_maxrss``: Linux carries
    ``ru_maxrss`` over from the forked parent across ``exec``, so a child of a large runner
    reported the runner's size (181 MB for every N in a full run)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def worker(url: str, folder: Path, repeat: int, batch: int) -> dict[str, Any]:
    """Runs in a child process: import then screen; returns the figures."""
    try:
        from ldncare.importing import import_ndjson
    except ImportError:  # a --baseline-src tree from before the importer was split by job
        from ldncare.fhir.importer import import_ndjson  # type: ignore[import-not-found,import-untyped,no-redef,unused-ignore]
    from ldncare.store.db import make_engine, migrate
    from ldncare.store.population import screen_population

    migrate(url)
    engine = make_engine(url)
    before = _current_rss_mb()
    size = sum(p.stat().st_size for p in folder.iterdir())
    started = time.perf_counter()
    report = import_ndjson(engine, folder, "bench", as_of=AS_OF, batch_size=batch)
    seconds = time.perf_counter() - started
    peak_import = _rss_mb()
    times = []
    hits = 0
    for _ in range(repeat):
        t = time.perf_counter()
        hits = len(screen_population(engine, AS_OF))
        times.append(time.perf_counter() - t)
    engine.dispose()
    return {
        "patients": report.patients_read,
        "errors": len(report.errors),
        "import_s": seconds,
        "patients_per_s": report.patients_read / seconds,
        "mb_per_s": size / 1e6 / seconds,
        "input_mb": size / 1e6,
        "rss_before_mb": before,
        "peak_rss_mb": peak_import,
        "screen_s": statistics.median(times),
        "hits": hits,
    }


def run_one(db: str, folder: Path, work: Path, repeat: int, batch: int, pg_base: str | None
            ) -> dict[str, Any]:  # fmt: skip
    with scratch_database(db, work, pg_base, "bench") as url:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", url, str(folder), "--repeat", str(repeat),
             "--batch", str(batch)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also run N = 1,000,000")
    parser.add_argument("--postgres", default=os.environ.get("LDNCARE_TEST_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="screening runs (median)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="patients per transaction")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--worker", nargs=2, metavar=("URL", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, folder = args.worker
        print(json.dumps(worker(url, Path(folder), args.repeat, args.batch)))
        return

    sys.path.insert(0, str(HERE))
    from generate_population import generate

    sizes = list(args.sizes) + ([1_000_000] if args.million else [])
    dbs = ["sqlite"] + (["postgresql"] if args.postgres and not args.no_postgres else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="ldncare-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        for n in sizes:
            folder = work / f"export-{n}"
            generate(folder, n)
            for db in dbs:
                result = run_one(db, folder, work, args.repeat, args.batch, args.postgres)
                result |= {"n": n, "db": db}
                rows.append(result)
                print(f"  done: N={n:,} {db}", file=sys.stderr)
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {date.today().isoformat()}")  # fmt: skip
    header = (f"{'N':>9} {'db':<10} {'import s':>9} {'patients/s':>11} {'MB/s':>6} "
              f"{'RSS before':>10} {'peak RSS':>9} {'screen s':>9} {'hits':>7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['n']:>9,} {r['db']:<10} {r['import_s']:>9.2f} {r['patients_per_s']:>11,.0f} "
            f"{r['mb_per_s']:>6.1f} {r['rss_before_mb']:>8.0f}MB {r['peak_rss_mb']:>7.0f}MB "
            f"{r['screen_s']:>9.3f} {r['hits']:>7,}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
