"""The login limiter kept in the database: one count for every worker and every machine.

The in-memory limiter (:class:`ldncare.web.auth.LoginLimiter`) counts in one process; behind a
load balancer, or with ``ldncare serve --workers N``, each process would allow its own quota of
guesses. With PostgreSQL the web app uses this one instead: the same thresholds and window, the
failures in the ``login_failures`` table, one row a failure.

Atomic: :meth:`DbLoginLimiter.begin` takes a transaction-scoped advisory lock on the
(address, username) key (PostgreSQL; SQLite holds its one write lock from ``BEGIN IMMEDIATE``),
counts the failures inside the window and, when the attempt may go ahead, records it as a
failure in the same transaction. A right password then clears the key (:meth:`succeed`). Two
workers cannot both read "4 of 5" and both let a guess through.

Times are the application servers' clocks (UTC); keep them in sync (NTP), as for the session
cookies' expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

from ldncare.store.models import LoginFailureRow


def _key(username: str) -> str:
    return username.strip().lower()[:64]


class DbLoginLimiter:
    """Failed logins per (IP, username) in a sliding window, kept in ``login_failures``."""

    def __init__(
        self,
        engine: Engine,
        max_failures: int,
        window_seconds: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self._swept = clock()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _lock(self, s: Session, ip: str, username: str) -> None:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                {"k": f"ldncare.login:{ip}:{username}"},
            )

    def _wait(self, s: Session, ip: str, username: str, now: datetime) -> int:
        """Seconds until the key may try again (0: now); drops the key's expired failures."""
        start = now - timedelta(seconds=self.window)
        key = (LoginFailureRow.username == username, LoginFailureRow.ip == ip)
        s.execute(delete(LoginFailureRow).where(*key, LoginFailureRow.at < start))
        count, first = s.execute(
            select(func.count(), func.min(LoginFailureRow.at)).where(*key)
        ).one()
        if count < self.max_failures or first is None:
            return 0
        if first.tzinfo is None:  # SQLite gives naive datetimes back
            first = first.replace(tzinfo=UTC)
        return max(1, int(self.window - (now - first).total_seconds()) + 1)

    def _sweep(self, s: Session, now: datetime) -> None:
        # At most once a window per process: every key's expired failures go.
        if self._clock() - self._swept < self.window:
            return
        self._swept = self._clock()
        s.execute(
            delete(LoginFailureRow).where(LoginFailureRow.at < now - timedelta(seconds=self.window))
        )

    def blocked(self, ip: str, username: str) -> int:
        """Seconds until the next attempt is allowed (0: allowed now)."""
        name, now = _key(username), self._now()
        with Session(self.engine) as s, s.begin():
            self._lock(s, ip, name)
            return self._wait(s, ip, name, now)

    def fail(self, ip: str, username: str) -> None:
        name, now = _key(username), self._now()
        with Session(self.engine) as s, s.begin():
            self._lock(s, ip, name)
            self._sweep(s, now)
            s.add(LoginFailureRow(ip=ip[:64], username=name, at=now))

    def begin(self, ip: str, username: str) -> int:
        """One attempt, atomically: the seconds to wait if the key is blocked, else 0 and the
        attempt is counted as a failure until :meth:`succeed` clears the key."""
        name, now = _key(username), self._now()
        with Session(self.engine) as s, s.begin():
            self._lock(s, ip, name)
            wait = self._wait(s, ip, name, now)
            if wait:
                return wait
            self._sweep(s, now)
            s.add(LoginFailureRow(ip=ip[:64], username=name, at=now))
            return 0

    def succeed(self, ip: str, username: str) -> None:
        name = _key(username)
        with Session(self.engine) as s, s.begin():
            self._lock(s, ip, name)
            s.execute(
                delete(LoginFailureRow).where(
                    LoginFailureRow.username == name, LoginFailureRow.ip == ip
                )
            )

    def keys_held(self) -> int:
        """How many (IP, username) keys have failures stored (for tests and monitoring)."""
        with Session(self.engine) as s:
            keys = select(LoginFailureRow.ip, LoginFailureRow.username).distinct().subquery()
            return int(s.scalar(select(func.count()).select_from(keys)) or 0)
