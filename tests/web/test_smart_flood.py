"""Anonymous launches cannot push out open EHR sessions nor make ldncare flood the EHR (review
#19/#21 M2), and the EHR's discovery and signing-key answers are refused past the size limit
while they arrive, not after being read whole (L8)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ldncare.web.smart import oauth, sessions
from ldncare.web.smart.errors import DiscoveryFailed, TokenRefused
from ldncare.web.smart.settings import SmartSettings
from tests.web import test_smart_launch as launches
from tests.web.test_smart_launch import DIRK, Ldncare

# The test EHR and the ldncare app of the launch suite.
ehr = launches.ehr
ldncare = launches.ldncare

SETTINGS = SmartSettings(
    client_id="ldncare",
    redirect_uri="https://ldn.example/smart/callback",
    max_response_bytes=100_000,
)


def _anonymous_launches(ldncare: Ldncare, count: int) -> None:
    """``count`` launches from browsers with no ldncare login and no EHR sign-in."""
    app = ldncare.client.app
    with TestClient(app) as stranger:
        for _ in range(count):
            stranger.cookies.clear()
            r = stranger.get(f"/smart/launch?iss={ldncare.ehr.fhir_base}", follow_redirects=False)
            assert r.status_code == 302


def test_a_flood_of_anonymous_launches_does_not_end_the_clinicians_open_session(
    ldncare: Ldncare, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = ldncare.launch(DIRK)
    assert page.status_code == 200
    # Small caps so that the flood is larger than both.
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 5)
    monkeypatch.setattr(sessions, "MAX_PENDING", 5, raising=False)
    _anonymous_launches(ldncare, 30)
    again = ldncare.get("/smart/patient")
    assert again.status_code == 200, again.text
    assert "Meperidine" in again.text


def test_a_launch_still_pending_when_the_flood_passes_is_the_one_dropped(
    ldncare: Ldncare, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "MAX_PENDING", 5)
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    _anonymous_launches(ldncare, 10)
    page = ldncare.callback(answer)
    assert page.status_code == 400  # its launch was pushed out: start again from the EHR
    held = ldncare.client.app.state.smart_sessions  # type: ignore[attr-defined]
    assert held.held() - held.held_established() <= 5


def test_many_launches_ask_the_ehr_for_its_configuration_once(ldncare: Ldncare) -> None:
    before = ldncare.ehr.discovery_requests
    _anonymous_launches(ldncare, 40)
    assert ldncare.ehr.discovery_requests - before == 1


def test_a_configuration_older_than_its_ttl_is_read_again(ldncare: Ldncare) -> None:
    cache = ldncare.client.app.state.smart_discovery  # type: ignore[attr-defined]
    cache.ttl = 0.05
    before = ldncare.ehr.discovery_requests
    _anonymous_launches(ldncare, 1)
    time.sleep(0.1)
    _anonymous_launches(ldncare, 1)
    assert ldncare.ehr.discovery_requests - before == 2


class _Endless:
    """An EHR answer that never ends; counts the bytes it was asked for."""

    def __init__(self, start: bytes) -> None:
        self.start = start
        self.sent = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.start
        self.sent += len(self.start)
        while self.sent < 50_000_000:
            chunk = b" " * 65536
            self.sent += len(chunk)
            yield chunk


def _serve(monkeypatch: pytest.MonkeyPatch, endless: _Endless) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless.chunks())

    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        kwargs.pop("verify", None)
        return real(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(oauth.httpx, "AsyncClient", client)


def test_a_discovery_answer_past_the_size_limit_is_refused_while_it_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endless = _Endless(json.dumps({"code_challenge_methods_supported": ["S256"]}).encode())
    _serve(monkeypatch, endless)
    with pytest.raises(DiscoveryFailed, match="more than 100000 bytes"):
        asyncio.run(oauth.discover("https://ehr.example/fhir", SETTINGS))
    assert endless.sent < 2 * SETTINGS.max_response_bytes


def test_a_signing_key_answer_past_the_size_limit_is_refused_while_it_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endless = _Endless(b'{"keys": [')
    _serve(monkeypatch, endless)
    with pytest.raises(TokenRefused):
        asyncio.run(
            oauth.verify_id_token(
                "a.b.c",
                issuer="https://ehr.example/fhir",
                jwks_uri="https://ehr.example/jwks",
                settings=SETTINGS,
            )
        )
    assert endless.sent < 2 * SETTINGS.max_response_bytes
