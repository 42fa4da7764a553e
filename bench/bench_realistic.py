"""Bulk NDJSON import on the realistic mix (issue 20): MB/s and patients/s per process.

For each N an export is written by ``generate_realistic.py`` (Synthea-sized patients, every
resource type, not timed), then imported ``--repeat`` times into a fresh SQLite database, each
run in its own process (``bench_import_screen.py --worker``) so its peak RSS (VmHWM) is its own.
With ``--baseline-src DIR`` (the ``src`` folder of another checkout, e.g. from
``git archive <commit> src | tar -x -C /tmp/old``) the runs alternate: baseline, this tree,
baseline, ... so that a drift of a shared machine hits both alike; the ratio is taken pair by
pair. Prints the median of each figure.

MB/s is the size of the whole export folder (every resource type, as a real export is
delivered) over the wall time of ``import_ndjson``; the bytes of the types ldncare reads are
printed beside it.

Run: ``.venv/bin/python bench/bench_realistic.py --sizes 1000 10000 --repeat 3
[--baseline-src /tmp/old/src] [--workdir /tmp]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def run(src: Path, folder: Path, work: Path) -> dict[str, Any]:
    db = work / f"bench-{uuid.uuid4().hex[:8]}.db"
    env = os.environ | {"PYTHONPATH": str(src)}
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "bench_import_screen.py"), "--worker",
             f"sqlite:///{db}", str(folder), "--repeat", "1"],
            check=True, capture_output=True, text=True, env=env,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        for p in work.glob(f"{db.name}*"):
            p.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep exports here")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from generate_realistic import generate, used_bytes

    variants = [("this tree", SRC)]
    if args.baseline_src:
        variants.insert(0, ("baseline", args.baseline_src))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; load average {os.getloadavg()}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ldncare-real-", dir=args.workdir) as tmp:
        work = Path(tmp)
        for n in args.sizes:
            folder = (args.keep or work) / f"realistic-{n}"
            if not (folder / "Patient.ndjson").exists():
                generate(folder, n)
            total = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            used = used_bytes(folder) / 1e6
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
            for _ in range(args.repeat):
                for name, src in variants:
                    r = run(src, folder, work)
                    rows[name].append(r)
                    print(f"  N={n:,} {name}: {r['import_s']:.2f} s, {r['mb_per_s']:.0f} MB/s, "
                          f"peak RSS {r['peak_rss_mb']:.0f} MB", file=sys.stderr)  # fmt: skip
            print(f"N={n:,}: export {total:,.0f} MB ({used:,.0f} MB of the types ldncare reads)")
            for name, runs in rows.items():
                med = {
                    k: statistics.median(r[k] for r in runs)
                    for k in ("import_s", "mb_per_s", "patients_per_s", "peak_rss_mb")
                }
                print(
                    f"  {name:<10} import {med['import_s']:.2f} s, {med['mb_per_s']:.0f} MB/s "
                    f"({used / med['import_s']:.0f} MB/s of the types read), "
                    f"{med['patients_per_s']:,.0f} patients/s, "
                    f"peak RSS {med['peak_rss_mb']:.0f} MB "
                    f"(median of {len(runs)}; errors {runs[0]['errors']})"
                )
            if args.baseline_src:
                ratios = [
                    b["import_s"] / a["import_s"]
                    for a, b in zip(rows["this tree"], rows["baseline"], strict=True)
                ]
                print(f"  speed-up, pair by pair: {', '.join(f'{x:.2f}' for x in ratios)} "
                      f"(median {statistics.median(ratios):.2f})")  # fmt: skip
            if args.keep is None:
                for p in folder.iterdir():
                    p.unlink()
                folder.rmdir()


if __name__ == "__main__":
    main()
