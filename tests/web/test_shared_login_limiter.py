"""The login limiter kept in the database (PostgreSQL in production): the same thresholds and
window as the in-memory one, one count for every worker and machine.

The limiter cases run on SQLite always and on PostgreSQL when LDNCARE_TEST_POSTGRES_URL is set;
the two-server case needs PostgreSQL (two uvicorn processes on real sockets, one database)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from ldncare.store.db import make_engine
from ldncare.store.login_limits import DbLoginLimiter
from ldncare.web.app import login_limiter
from ldncare.web.auth import LoginLimiter, create_user
from ldncare.web.settings import WebSettings
from tests.integration.followup_db import PG_ENV, db_url, pg_db_url  # noqa: F401
from tests.web.conftest import PASSWORD

LDNCARE = Path(sys.executable).with_name("ldncare")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_five_wrong_passwords_lock_the_account_for_the_rest_of_the_window(engine: Engine) -> None:
    clock = Clock()
    limiter = DbLoginLimiter(engine, max_failures=5, window_seconds=300, clock=clock)
    for _ in range(5):
        assert limiter.begin("10.0.0.1", "Clin1 ") == 0  # each wrong password counted
        clock.now += 10
    assert limiter.begin("10.0.0.1", "clin1") == 300 - 50 + 1
    assert limiter.blocked("10.0.0.1", "clin1") == 251
    # Another address, or another username, has its own count.
    assert limiter.begin("10.0.0.2", "clin1") == 0
    assert limiter.begin("10.0.0.1", "clin2") == 0
    clock.now += 251  # the first failure left the window
    assert limiter.begin("10.0.0.1", "clin1") == 0


def test_a_right_password_clears_the_count(engine: Engine) -> None:
    clock = Clock()
    limiter = DbLoginLimiter(engine, max_failures=3, window_seconds=60, clock=clock)
    limiter.begin("10.0.0.1", "anna")
    limiter.begin("10.0.0.1", "anna")
    limiter.succeed("10.0.0.1", "anna")
    assert limiter.keys_held() == 0
    for _ in range(3):
        assert limiter.begin("10.0.0.1", "anna") == 0
    assert limiter.begin("10.0.0.1", "anna") > 0


def test_expired_failures_are_swept_once_a_window(engine: Engine) -> None:
    clock = Clock()
    limiter = DbLoginLimiter(engine, max_failures=3, window_seconds=60, clock=clock)
    for i in range(50):
        limiter.fail("10.0.0.1", f"guess{i}")
    assert limiter.keys_held() == 50
    clock.now += 61
    limiter.fail("10.0.0.9", "someone")
    assert limiter.keys_held() == 1


def test_concurrent_guesses_from_many_threads_get_no_more_than_the_limit(engine: Engine) -> None:
    """The limit check and the count are one atomic step: 20 simultaneous guesses (as from 20
    workers) let exactly max_failures through."""
    limiter = DbLoginLimiter(engine, max_failures=5, window_seconds=300)
    allowed: list[int] = []
    barrier = threading.Barrier(20)

    def guess() -> None:
        barrier.wait()
        if limiter.begin("10.0.0.1", "clin1") == 0:
            allowed.append(1)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 5


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.integers(min_value=1, max_value=6),
    st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=25),
)
def test_the_database_limiter_decides_as_the_in_memory_one(
    engine: Engine, limit: int, steps: list[tuple[bool, int]]
) -> None:
    """Safety invariant: for any sequence of attempts (right or wrong password) and pauses, the
    shared limiter refuses exactly when the in-memory one of the same settings does."""
    import ldncare.web.auth as auth

    clock = Clock()
    db = DbLoginLimiter(engine, max_failures=limit, window_seconds=60, clock=clock)
    memory = LoginLimiter(max_failures=limit, window_seconds=60)
    original = auth.time.monotonic
    auth.time.monotonic = clock  # type: ignore[assignment]
    try:
        user = f"u{uuid.uuid4().hex[:12]}"  # a fresh key per example
        for right, pause in steps:
            clock.now += pause
            a, b = db.begin("10.0.0.1", user), memory.begin("10.0.0.1", user)
            assert (a > 0) == (b > 0)
            if right and not a:
                db.succeed("10.0.0.1", user)
                memory.succeed("10.0.0.1", user)
    finally:
        auth.time.monotonic = original


def test_the_web_app_shares_the_limit_through_postgresql_and_keeps_it_in_memory_on_sqlite(
    db_url: str,  # noqa: F811
) -> None:
    settings = WebSettings(database_url=db_url, secret_key="k" * 48)
    eng = make_engine(db_url)
    try:
        chosen = login_limiter(eng, settings)
        expected = DbLoginLimiter if db_url.startswith("postgresql") else LoginLimiter
        assert type(chosen) is expected
        assert (chosen.max_failures, chosen.window) == (5, 300)
    finally:
        eng.dispose()


# --- two server processes on one PostgreSQL -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDNCARE_")}
    env.update(
        LDNCARE_DATABASE_URL=url,
        LDNCARE_SECRET_KEY="s" * 48,
        LDNCARE_LOGIN_MAX_FAILURES="4",
    )
    with log.open("w") as out:
        return subprocess.Popen(
            [str(LDNCARE), "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )


def _wait_up(base: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


@pytest.fixture
def two_servers(pg_db_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:  # noqa: F811
    """Two servers share a login limit through PostgreSQL (on SQLite the limiter is in memory,
    per process: docs/SECURITY.md)."""
    url = pg_db_url
    eng = make_engine(url)
    create_user(eng, "clin1", PASSWORD, role="clinician", clinic_id="clinic-1", actor="test")
    eng.dispose()
    ports = _free_port(), _free_port()
    logs = [tmp_path / f"server{i}.log" for i in (1, 2)]
    procs = [_serve(url, port, log) for port, log in zip(ports, logs, strict=True)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, log in zip(bases, logs, strict=True):
            _wait_up(base, log)
        yield bases[0], bases[1]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _login(base: str, password: str) -> int:
    body = {"username": "clin1", "password": password}
    return httpx.post(f"{base}/api/session", json=body, timeout=30).status_code


def test_failed_logins_spread_over_two_servers_lock_the_account_on_both(
    two_servers: tuple[str, str],
) -> None:
    """4 allowed failures: 2 on each server. With a limiter per process each server would have
    counted 2 and let the right password in; the shared one refuses it on both."""
    first, second = two_servers
    assert [_login(b, "wrong password 1") for b in (first, second, first)] == [401] * 3
    assert _login(second, "wrong password 2") == 401  # the 4th failure, on the second server
    assert _login(first, PASSWORD) == 429
    assert _login(second, PASSWORD) == 429


def test_a_right_password_on_one_server_clears_the_count_for_both(
    two_servers: tuple[str, str],
) -> None:
    first, second = two_servers
    assert [_login(b, "wrong password 1") for b in (first, second, first)] == [401] * 3
    assert _login(second, PASSWORD) == 200
    assert [_login(b, "wrong password 2") for b in (first, second, first)] == [401] * 3
    assert _login(second, PASSWORD) == 200
