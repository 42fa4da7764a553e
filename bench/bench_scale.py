"""Population scale on the realistic Bulk mix (issue 20): prefilter, workers, incremental.

For each N two exports are written by ``generate_realistic.py`` (not timed), every resource
stamped ``meta.lastUpdated`` = T0, and the same export taken again after 1 % of the patients
changed (their resources stamped T1, their family name corrected). Each repeat, for each
database (SQLite; PostgreSQL when ``--postgres`` or ``LDNCARE_TEST_POSTGRES_URL`` is set),
runs in fresh databases, each import in its own process:

- ``one process, no prefilter``: ``import_ndjson`` with ``LDNCARE_NO_PREFILTER=1`` (as before
  the prefilter);
- ``one process``: ``import_ndjson`` (prefilter on);
- ``workers=1``: ``ldncare.import_parallel.import_export`` in one process, then the newer
  export imported in full (the re-import when 1 % changed);
- ``workers=2``: ``import_export`` with two worker processes, then the newer export with
  ``since=T1`` (the incremental import).

Peak memory is the largest *sum* of the RSS of the import process and all its descendants
(the worker processes), sampled every 0.2 s. Prints the median of each figure and writes the
rows as JSON with ``--json``.

Run: ``.venv/bin/python bench/bench_scale.py --sizes 10000 --repeat 3 --data /tmp/scale
[--postgres URL] [--variants ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from common import scratch_database

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
AS_OF = date(2026, 12, 1)
T0 = "2026-10-01T00:00:00Z"
T1 = "2026-11-15T00:00:00Z"
VARIANTS = ("no-prefilter", "one", "w1", "w2")


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def _sample(root: int, cpu: dict[int, float]) -> int:
    """Bytes of RSS of ``root`` and every process below it; records each one's CPU seconds
    (user + system) so far in ``cpu``."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """(result, seconds, peak MB of this process tree, CPU seconds of the tree). The CPU time
    of a worker process is its last sample (every 0.2 s): it can miss up to 0.2 s each."""
    peak = [0]
    cpu: dict[int, float] = {}
    me = os.getpid()
    before = os.times()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _sample(me, cpu))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        thread.join()
    after = os.times()
    own = (after.user - before.user) + (after.system - before.system)
    cpu.pop(me, None)
    return result, seconds, peak[0] / 1e6, own + sum(cpu.values())


def worker(mode: str, url: str, t0: Path, t1: Path) -> dict[str, Any]:
    from ldncare.import_parallel import import_export, parse_since
    from ldncare.importing import import_ndjson
    from ldncare.store.db import make_engine, migrate

    migrate(url)
    engine = make_engine(url)
    out: dict[str, Any] = {"mode": mode}
    if mode in ("no-prefilter", "one"):
        report, s, mb, cpu = _timed(lambda: import_ndjson(engine, t0, "bench", as_of=AS_OF))
    else:
        w = 2 if mode == "w2" else 1
        report, s, mb, cpu = _timed(
            lambda: import_export(engine, t0, "bench", as_of=AS_OF, workers=w)
        )
        out["staging_s"] = report.seconds_staging
    out |= {"full_s": s, "peak_mb": mb, "cpu_s": cpu, "patients": report.patients_read,
            "errors": len(report.errors)}  # fmt: skip
    if mode == "w1":
        again, s, _, cpu = _timed(
            lambda: import_export(engine, t1, "bench", as_of=AS_OF, workers=1)
        )
        out |= {"reimport_s": s, "reimport_cpu_s": cpu, "reimport_updated": again.patients_updated}
    elif mode == "w2":
        since = parse_since(T1)
        inc, s, _, cpu = _timed(
            lambda: import_export(engine, t1, "bench", as_of=AS_OF, workers=1, since=since)
        )
        out |= {"since_s": s, "since_cpu_s": cpu, "since_updated": inc.patients_updated,
                "since_skipped": inc.patients_not_changed_since}  # fmt: skip
    engine.dispose()
    return out


def run(mode: str, db: str, t0: Path, t1: Path, work: Path, pg: str | None) -> dict[str, Any]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(SRC), *sys.path[1:]])}
    if mode == "no-prefilter":
        env["LDNCARE_NO_PREFILTER"] = "1"
    with scratch_database(db, work, pg, "scale") as url:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", mode, url, str(t0), str(t1)],
            check=True, capture_output=True, text=True, env=env,
        )  # fmt: skip
        row: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="exports are kept here")
    parser.add_argument("--postgres", default=os.environ.get("LDNCARE_TEST_POSTGRES_URL"))
    parser.add_argument("--dbs", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, url, t0, t1 = args.worker
        print(json.dumps(worker(mode, url, Path(t0), Path(t1))))
        return
    sys.path.insert(0, str(HERE))
    from generate_realistic import generate, used_bytes

    if args.data is None:
        parser.error("--data DIR is required")
    dbs = [d for d in args.dbs if d == "sqlite" or args.postgres]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        t0, t1 = args.data / f"scale-{n}-t0", args.data / f"scale-{n}-t1"
        if not (t0 / "Patient.ndjson").exists():
            generate(t0, n, last_updated=T0)
        if not (t1 / "Patient.ndjson").exists():
            generate(t1, n, last_updated=T0, changed_at=T1, changed_every=100)
        total = sum(p.stat().st_size for p in t0.iterdir())
        used = used_bytes(t0)
        for rep in range(args.repeat):
            for db in dbs:
                for mode in args.variants:
                    load = os.getloadavg()[0]
                    row = run(mode, db, t0, t1, args.data, args.postgres)
                    row |= {"n": n, "db": db, "rep": rep, "load": load, "export_mb": total / 1e6,
                            "used_mb": used / 1e6}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if args.json:
                        args.json.write_text(json.dumps(rows, indent=1))
    print()
    print("| N | db | import | wall (median) | MB/s export (types read) | patients/s | "
          "CPU s (types read MB per CPU s) | peak RSS, all processes | load |")  # fmt: skip
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        for db in dbs:
            for mode in args.variants:
                rs = [r for r in rows if (r["n"], r["db"], r["mode"]) == (n, db, mode)]
                if not rs:
                    continue
                s = statistics.median(r["full_s"] for r in rs)
                c = statistics.median(r["cpu_s"] for r in rs)
                print(f"| {n:,} | {db} | {mode} | {s:.1f} s | {rs[0]['export_mb'] / s:.0f} "
                      f"({rs[0]['used_mb'] / s:.0f}) | {rs[0]['patients'] / s:.0f} | "
                      f"{c:.1f} ({rs[0]['used_mb'] / c:.0f}) | "
                      f"{statistics.median(r['peak_mb'] for r in rs):.0f} MB | "
                      f"{min(r['load'] for r in rs):.1f}-"
                      f"{max(r['load'] for r in rs):.1f} |")  # fmt: skip
                for key in ("reimport_s", "reimport_cpu_s", "since_s", "since_cpu_s",
                            "staging_s"):  # fmt: skip
                    vals = [r[key] for r in rs if key in r]
                    if vals:
                        print(f"|   |   | {mode} {key} | {statistics.median(vals):.1f} s |  |  |"
                              "  |  |")  # fmt: skip


if __name__ == "__main__":
    main()
