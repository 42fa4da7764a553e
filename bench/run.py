"""Run every benchmark and write bench/RESULTS.md.

    .venv/bin/python bench/run.py            # everything (several minutes)
    .venv/bin/python bench/run.py --quick    # fewer repetitions, smaller populations
    .venv/bin/python bench/run.py --only plan,ask

Each figure is the median of repeated runs; ratios (e.g. CDS Hooks vs /healthz) come from the
same run on the same machine. Targets are checked here, never in unit tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Result

HERE = Path(__file__).resolve().parent


def _groups() -> dict[str, Callable[[bool], list[Result]]]:
    import bench_chart
    import bench_core

    groups: dict[str, Callable[[bool], list[Result]]] = {
        "plan": bench_core.bench_plan,
        "ask": bench_core.bench_ask,
        "startup": bench_core.bench_cold_start,
        "chart": bench_chart.bench_chart,
    }
    for module, names in (("bench_http", ("http", "pages")), ("bench_population", ("population",))):
        if (HERE / f"{module}.py").exists():
            mod = __import__(module)
            for name in names:
                groups[name] = getattr(mod, f"bench_{name}")
    return groups


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def render(results: list[Result], seconds: float, quick: bool) -> str:
    lines = [
        "# ldncare benchmark results",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Mode: {'quick' if quick else 'full'}; total run time {seconds:.0f} s",
        "- Each figure is the median of repeated runs unless it says otherwise.",
        "",
        "| group | measure | value | target | met |",
        "|---|---|---:|---|---|",
    ]
    for r in results:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        value = f"{r.value:,.3f}".rstrip("0").rstrip(".") if r.value < 100 else f"{r.value:,.0f}"
        note = f" ({r.note})" if r.note else ""
        lines.append(f"| {r.group} | {r.name}{note} | {value} {r.unit} | {r.target} | {met} |")
    missed = [r for r in results if r.met is False]
    lines += ["", f"Targets missed: {len(missed)} of {sum(r.met is not None for r in results)}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated groups")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    groups = _groups()
    wanted = args.only.split(",") if args.only else list(groups)
    unknown = [g for g in wanted if g not in groups]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; available: {', '.join(groups)}")
    start = dt.datetime.now()
    results: list[Result] = []
    for name in wanted:
        print(f"== {name}", flush=True)
        got = groups[name](args.quick)
        for r in got:
            flag = "" if r.met is None else (" ok" if r.met else " MISSED")
            print(f"  {r.name}: {r.value:.3f} {r.unit} {r.target}{flag}", flush=True)
        results += got
    seconds = (dt.datetime.now() - start).total_seconds()
    args.out.write_text(render(results, seconds, args.quick), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
