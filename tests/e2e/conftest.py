"""Shared set-up of the browser tests: the app under uvicorn on a fresh SQLite file with the demo
data, and Debian's chromium driven by Playwright (never `playwright install`).

The app runs on a free 127.0.0.1 port in a thread. Every module gets its own server and database,
so one module's writes (new patients, diary days) never change what another module sees.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("CI") == "true":
    # In CI the browser tests are part of the suite: a missing browser is a failure.
    raise RuntimeError("/usr/bin/chromium missing in CI: scripts/ci-system-deps.sh installs it")

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "ldncare-demo"
# The two sizes every page is checked at: a laptop, and a common phone (CSS pixels).
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason="/usr/bin/chromium missing: run scripts/ci-system-deps.sh")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Live:
    """The running app: its base URL and its database engine (for set-up reads only)."""

    url: str
    engine: Any


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from ldncare.web.app import create_app
    from ldncare.web.demo import load_demo
    from ldncare.web.settings import WebSettings

    db = tmp_path_factory.mktemp("e2e") / "e2e.db"
    settings = WebSettings(database_url=f"sqlite:///{db}", demo=True, cookie_secure=False)
    app = create_app(settings)
    app.state.demo_logins = load_demo(app.state.engine)
    port = _free_port()
    with serve_in_thread(app, port):
        yield Live(f"http://127.0.0.1:{port}", app.state.engine)


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int) -> Iterator[None]:
    """``app`` under uvicorn on 127.0.0.1:``port`` in a daemon thread, until the block ends."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False)  # fmt: skip
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(live: Live) -> str:
    return live.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright import sync_api as playwright_api

    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
