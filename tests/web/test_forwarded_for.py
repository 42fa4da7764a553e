"""Issue #19 (High): a forged X-Forwarded-For must not dodge the login limit or the audit log.

The app runs behind uvicorn's own middleware stack, built from the options ``ldncare serve``
passes (``uvicorn.Config.load``), so the test sees what a real server does with the header.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ldncare.cli.web_commands import uvicorn_options
from ldncare.store.models import AuditRow
from ldncare.web.app import create_app
from ldncare.web.settings import WebSettings
from tests.web.conftest import PASSWORD, seed_people


def _served(tmp_path: Path, **extra: Any) -> tuple[Any, Any]:
    settings = WebSettings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        secret_key="k" * 48,
        cookie_secure=False,
        login_max_failures=3,
        **extra,
    )
    app = create_app(settings)
    seed_people(app.state.engine)
    config = uvicorn.Config(
        app, **uvicorn_options(settings, host="127.0.0.1", port=8000, loop="asyncio")
    )
    config.load()
    return config.loaded_app, app.state.engine


def _logins(asgi: Any, peer: str, attempts: list[tuple[str, str]]) -> list[int]:
    """POST /api/session once per (forwarded-for, password) from TCP peer ``peer``."""

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=asgi, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            codes = []
            for forwarded, password in attempts:
                r = await client.post(
                    "/api/session",
                    json={"username": "clin1", "password": password},
                    headers={"X-Forwarded-For": forwarded},
                )
                codes.append(r.status_code)
            return codes

    return asyncio.run(run())


def _login_ips(engine: Any) -> list[str]:
    """The client address of every login and refused login in the audit log."""
    with Session(engine) as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.action.in_(("login", "denied")))).all()
        return [r.detail["ip"] for r in rows if r.detail and "ip" in r.detail]


def test_guesser_on_localhost_forging_forwarded_for_stays_locked_out(tmp_path: Path) -> None:
    asgi, engine = _served(tmp_path)
    guesses = [(f"203.0.113.{i}", f"wrong guess {i}") for i in range(6)]
    codes = _logins(asgi, "127.0.0.1", guesses)
    assert codes == [401, 401, 401, 429, 429, 429]
    # Even the right password waits out the window: the forged address changes nothing.
    assert _logins(asgi, "127.0.0.1", [("198.51.100.7", PASSWORD)]) == [429]
    assert set(_login_ips(engine)) == {"127.0.0.1"}  # the real peer, not a forged address


def test_named_proxy_passes_on_the_client_address(tmp_path: Path) -> None:
    asgi, engine = _served(tmp_path, trusted_proxies="10.0.0.5")
    # Through the proxy, two clients are limited separately, each by its own address.
    first = _logins(asgi, "10.0.0.5", [("203.0.113.1", "wrong guess")] * 4)
    assert first == [401, 401, 401, 429]
    assert _logins(asgi, "10.0.0.5", [("203.0.113.2", PASSWORD)]) == [200]
    assert "203.0.113.2" in _login_ips(engine)
    # A client that reaches the server directly is not a proxy: its header is ignored.
    direct = _logins(asgi, "192.0.2.9", [(f"203.0.113.{i}", "wrong") for i in range(10, 14)])
    assert direct == [401, 401, 401, 429]
    assert "203.0.113.10" not in _login_ips(engine)


@pytest.mark.parametrize("value", ["*", "nginx.local", "10.0.0.300"])
def test_trusted_proxies_must_be_addresses(value: str) -> None:
    with pytest.raises(ValidationError, match="not an IP address or network"):
        WebSettings(trusted_proxies=value)
