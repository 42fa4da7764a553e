"""Several uvicorn workers on one port (``ldncare serve --workers N``).

Each worker listens on a socket of its own, all bound to the same port with ``SO_REUSEPORT``,
so the kernel spreads new connections over the workers. uvicorn's own supervisor gives every
worker one shared listening socket instead; asyncio accepts every waiting connection at each
wake-up, so whichever worker woke first took all 50 connections of a benchmark run and the
other stayed idle (2,218 against 4,235 req/s when they happened to split; bench/README.md).
Only processes of the same user can join a ``SO_REUSEPORT`` group.

The sockets are made with ``IPPROTO_TCP`` and ``TCP_NODELAY``: uvicorn's shared socket has
protocol 0, so asyncio skipped ``TCP_NODELAY`` on accepted connections and every response body
waited 40 ms for the client's delayed ACK (Kludex/uvicorn#3149).
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

#: A worker that dies sooner than this after starting is not restarted: the next would too.
CRASH_WINDOW_SECONDS = 10.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT and TCP_NODELAY, not yet listening.

    Linux copies TCP_NODELAY to the connections the socket accepts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _answers(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on (host, port) now."""
    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


def _serve_one(factory: str, options: dict[str, Any]) -> None:
    """One worker process: its own socket, the app from ``factory``, uvicorn until signalled."""
    import uvicorn

    sock = listening_socket(options["host"], options["port"])
    config = uvicorn.Config(factory, factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(factory: str, workers: int, options: dict[str, Any]) -> int:
    """Serve ``factory`` (an import string) from ``workers`` processes until SIGINT/SIGTERM.

    A worker that exits is started again, unless it died within :data:`CRASH_WINDOW_SECONDS`
    of starting (a broken app or a taken port): then every worker is stopped and 1 returned.
    """
    # Refuse at once if the port is taken: by another program (the bind fails), or by another
    # server of this user, which SO_REUSEPORT would let us join silently, splitting the
    # connections between two apps.
    host, port = options["host"], options["port"]
    if _answers(host, port):
        raise OSError(errno.EADDRINUSE, "something already listens on this port")
    listening_socket(host, port).close()
    spawn = multiprocessing.get_context("spawn")
    started: dict[int, float] = {}

    def start() -> BaseProcess:
        proc = spawn.Process(target=_serve_one, args=(factory, options), daemon=False)
        proc.start()
        started[proc.pid or 0] = time.monotonic()
        return proc

    procs: list[BaseProcess] = []
    stopping = False
    signalled: set[int] = set()  # a second SIGTERM would cut uvicorn's graceful shutdown short

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.is_alive() and proc.pid and proc.pid not in signalled:
                signalled.add(proc.pid)
                os.kill(proc.pid, signal.SIGTERM)

    # The handlers go in before the first worker starts: a SIGTERM while the workers are being
    # spawned must stop the ones already running, not kill this process and orphan them with
    # the port held.
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        for _ in range(workers):
            if stopping:
                break
            procs.append(start())
        while not stopping:
            wait([p.sentinel for p in procs])
            for i, proc in enumerate(procs):
                if stopping or proc.is_alive():
                    continue
                lived = time.monotonic() - started.pop(proc.pid or 0, 0.0)
                print(
                    f"ldncare: worker {proc.pid} exited with code {proc.exitcode}",
                    file=sys.stderr,
                )
                if lived < CRASH_WINDOW_SECONDS:
                    code = 1
                    stop(signal.SIGTERM, None)
                    break
                procs[i] = start()
    finally:
        # Workers not yet told: one started while the signal was handled, or all of them when
        # an exception ends the loop. None may outlive this process.
        stop(signal.SIGTERM, None)
        for proc in procs:
            proc.join(20)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
