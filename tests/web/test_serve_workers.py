"""``ldncare serve --workers 2`` as a real process: one login works on every worker.

Each worker builds its own app; in demo mode the session key is random, so a worker that made
its own key would reject the cookies of the other. The parent makes the key once and hands it
to the workers (``web.app.worker_environment``).
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

LDNCARE = Path(sys.executable).with_name("ldncare")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(base URL, a demo clinician's username, password) of a 2-worker demo server."""
    folder = tmp_path_factory.mktemp("workers")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDNCARE_")}
    env["LDNCARE_DATABASE_URL"] = f"sqlite:///{folder / 'demo.db'}"
    log = folder / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(LDNCARE), "serve", "--demo", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core CI machine starts two workers slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"server did not start:\n{log.read_text()}")
        text = log.read_text()
        assert "2 worker processes" in text, text
        found = re.search(r"^\s+(\S+)\s+(\S+)\s+clinician$", text, re.MULTILINE)
        assert found, text
        yield base, found.group(1), found.group(2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_login_is_valid_on_every_worker(two_workers: tuple[str, str, str]) -> None:
    base, username, password = two_workers
    login = httpx.post(f"{base}/api/session", json={"username": username, "password": password})
    assert login.status_code == 200, login.text
    cookies = dict(login.cookies)
    # New connections each time: the kernel hands them to either worker.
    statuses = [
        httpx.get(f"{base}/api/patients", cookies=cookies, timeout=10).status_code
        for _ in range(40)
    ]
    assert statuses == [200] * 40
    anonymous = httpx.get(f"{base}/api/patients", timeout=10)
    assert anonymous.status_code == 401


def test_demo_logins_are_shown_by_every_worker(two_workers: tuple[str, str, str]) -> None:
    base, username, _ = two_workers
    pages = [httpx.get(f"{base}/login", timeout=10).text for _ in range(20)]
    assert all(username in page for page in pages)


def test_cds_hooks_answer_on_every_worker(two_workers: tuple[str, str, str]) -> None:
    base, _, _ = two_workers
    services = [httpx.get(f"{base}/cds-services", timeout=10).status_code for _ in range(10)]
    assert services == [200] * 10


def test_worker_sockets_share_the_port_and_accept_with_tcp_nodelay() -> None:
    """Without TCP_NODELAY a response's body waited for the client's delayed ACK (40 ms a
    request); without SO_REUSEPORT the workers could not each listen on the port."""
    from ldncare.web.server import listening_socket

    port = _free_port()
    first, second = listening_socket("127.0.0.1", port), listening_socket("127.0.0.1", port)
    try:
        for listener in (first, second):
            listener.listen()
        with socket.create_connection(("127.0.0.1", port)):
            ready, _, _ = select.select([first, second], [], [], 5)
            assert len(ready) == 1  # the kernel gave the connection to one of the two
            accepted, _ = ready[0].accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("reuseport", [False, True], ids=["plain", "so-reuseport"])
def test_a_port_already_listened_on_is_refused_with_a_message(
    tmp_path: Path, reuseport: bool
) -> None:
    """A holder with SO_REUSEPORT (say another ldncare) would otherwise share the port."""
    with socket.socket() as holder:
        if reuseport:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDNCARE_")}
        env["LDNCARE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'busy.db'}"
        done = subprocess.run(
            [str(LDNCARE), "serve", "--demo", "--workers", "2", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def bare_app() -> object:
    """A minimal ASGI app for the supervisor test (imported by the spawned workers)."""
    from fastapi import FastAPI

    return FastAPI()


_STOP_DURING_SPAWN = """
import multiprocessing.context, os, signal, sys
from ldncare.web.server import run_workers

start = multiprocessing.context.SpawnProcess.start

def start_then_sigterm(self):
    start(self)
    with open(sys.argv[2], "a") as out:
        out.write(f"{self.pid}\\n")
    os.kill(os.getpid(), signal.SIGTERM)  # as if an operator stopped the server right now

multiprocessing.context.SpawnProcess.start = start_then_sigterm
options = {"host": "127.0.0.1", "port": int(sys.argv[1]), "log_level": "warning"}
sys.exit(run_workers("tests.web.test_serve_workers:bare_app", 2, options))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_while_workers_start_stops_them_too(tmp_path: Path) -> None:
    """A stop signal during the spawn must not leave an orphaned worker holding the port."""
    pids = tmp_path / "pids"
    result = subprocess.run(
        [sys.executable, "-c", _STOP_DURING_SPAWN, str(_free_port()), str(pids)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    started = [int(line) for line in pids.read_text().split()]
    assert started == started[:1], "no second worker is started once stopping"
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in started), "a worker outlived its supervisor"
