"""Shared pieces of the benchmarks: results with targets, medians of repeated runs."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    group: str
    name: str
    value: float
    unit: str
    #: Human-readable target, e.g. "<= 5 ms"; empty when the figure is informative only.
    target: str = ""
    met: bool | None = None
    note: str = ""


def at_most(group: str, name: str, value: float, unit: str, limit: float, note: str = "") -> Result:
    return Result(group, name, value, unit, f"<= {limit:g} {unit}", value <= limit, note)


def at_least(
    group: str, name: str, value: float, unit: str, floor: float, note: str = ""
) -> Result:
    return Result(group, name, value, unit, f">= {floor:g} {unit}", value >= floor, note)


def info(group: str, name: str, value: float, unit: str, note: str = "") -> Result:
    return Result(group, name, value, unit, "", None, note)


def timings_ms(fn: Callable[[], object], *, repeat: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@contextmanager
def scratch_database(db: str, work: Path, pg_base: str | None, prefix: str) -> Iterator[str]:
    """The URL of a new empty database, removed afterwards: a SQLite file in ``work`` (with
    its -wal/-shm files), or, for ``db="postgresql"``, a database next to ``pg_base``."""
    if db == "sqlite":
        url = f"sqlite:///{work / f'{prefix}-{uuid.uuid4().hex[:8]}.db'}"
        try:
            yield url
        finally:
            for p in work.glob(f"{Path(url[10:]).name}*"):
                p.unlink()
        return
    assert pg_base
    url, drop = scratch_pg_database(pg_base, f"ldncare_{prefix}")
    try:
        yield url
    finally:
        drop()


def scratch_pg_database(base: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """A new empty PostgreSQL database next to ``base``: its URL and the function that drops it."""
    from sqlalchemy import create_engine, make_url, text

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop
