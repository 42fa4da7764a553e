"""CPU per CDS Hooks call, in process (issue #18): ``serve_call`` (the function the HTTP route
and the pure-ASGI path call) without HTTP, timed with ``time.process_time`` so that the other
jobs on a shared machine move the figures much less than wall time.

For each request (13 KiB and ~53 KiB order-select, checked = naltrexone with an active opioid,
floor = amoxicillin: no check; patient-view; order-sign) the best of ``--rounds`` rounds of
``--calls`` calls, in µs per call. ``--baseline-src DIR`` measures another source tree (e.g.
``git archive`` of the commit before) too: each tree runs in its own process, ``--repeat``
times, alternating A/B, and the median over the processes is reported.

    PYTHONPATH=src python bench/bench_cds_cpu.py --repeat 5 [--baseline-src DIR]
    PYTHONPATH=src python bench/bench_cds_cpu.py --profile 53KiB-checked  # cProfile, top 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def requests() -> dict[str, tuple[str, dict[str, Any]]]:
    from bench_cds_floor import order_sign_request, synthea_request
    from bench_http import cds_request

    return {
        "13KiB-checked": ("ldncare-order-select", cds_request("order-select")),
        "13KiB-floor": ("ldncare-order-select", cds_request("order-select", ordered="amoxicillin")),
        "53KiB-checked": ("ldncare-order-select", synthea_request("naltrexone")),
        "53KiB-floor": ("ldncare-order-select", synthea_request("amoxicillin")),
        "patient-view": ("ldncare-patient-view", cds_request("patient-view")),
        "order-sign": ("ldncare-order-sign", order_sign_request()),
    }


def _serve_call() -> Any:
    from ldncare.cdshooks.service import build_router
    from ldncare.cdshooks.settings import CdsSettings

    return build_router(CdsSettings(demo=True)).serve_call  # type: ignore[attr-defined]


def measure(calls: int, rounds: int) -> dict[str, float]:
    """µs of CPU per call for each request, best of ``rounds``."""
    serve_call = _serve_call()
    bodies = {k: (s, json.dumps(b).encode()) for k, (s, b) in requests().items()}
    loop = asyncio.new_event_loop()
    out: dict[str, float] = {}
    for name, (service, raw) in bodies.items():
        url = f"http://127.0.0.1/cds-services/{service}"

        async def run(n: int, service: str = service, raw: bytes = raw, url: str = url) -> None:
            for _ in range(n):
                status, payload = await serve_call(service, raw, None, url, "application/json")
                assert status == 200, payload

        loop.run_until_complete(run(20))  # warm the caches
        best = float("inf")
        for _ in range(rounds):
            t0 = time.process_time()
            loop.run_until_complete(run(calls))
            best = min(best, (time.process_time() - t0) / calls * 1e6)
        out[name] = best
    return out


def profile(name: str, calls: int) -> None:
    import cProfile
    import pstats

    serve_call = _serve_call()
    service, body = requests()[name]
    raw = json.dumps(body).encode()
    url = f"http://127.0.0.1/cds-services/{service}"

    async def run(n: int) -> None:
        for _ in range(n):
            await serve_call(service, raw, None, url, "application/json")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(20))
    prof = cProfile.Profile()
    prof.enable()
    loop.run_until_complete(run(calls))
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--profile", default=None, help="cProfile one request instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.calls * 5)
        return 0
    if args.child:
        print(json.dumps(measure(args.calls, args.rounds)))
        return 0
    here = os.environ.get("PYTHONPATH", "")
    trees = {"after": here}
    if args.baseline_src:
        trees = {"before": str(args.baseline_src.resolve()), "after": here}
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    for r in range(args.repeat):
        order = list(trees.items())
        for tree, path in order if r % 2 == 0 else order[::-1]:
            env = dict(os.environ, PYTHONPATH=path)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child",
                   "--calls", str(args.calls), "--rounds", str(args.rounds)]  # fmt: skip
            done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            runs[tree].append(json.loads(done.stdout.strip().splitlines()[-1]))
    names = list(next(iter(runs.values()))[0])
    print(f"CPU µs per call, best of {args.rounds} × {args.calls} calls, median of "
          f"{args.repeat} alternating processes")  # fmt: skip
    print("| tree | " + " | ".join(names) + " | checked/floor 13 KiB | checked/floor 53 KiB |")
    print("|---|" + "---:|" * (len(names) + 2))
    for tree, rs in runs.items():
        med = {n: statistics.median(r[n] for r in rs) for n in names}
        ratio13 = med["13KiB-floor"] / med["13KiB-checked"] * 100
        ratio53 = med["53KiB-floor"] / med["53KiB-checked"] * 100
        print(f"| {tree} | " + " | ".join(f"{med[n]:.0f}" for n in names)
              + f" | {ratio13:.1f} % | {ratio53:.1f} % |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
