"""Issue #19 (Low): the 413 and 500 answers carry the same security headers as every other
response (CSP, X-Frame-Options, Referrer-Policy, no-store), and a 500 shows no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ldncare.web.app import create_app
from ldncare.web.headers import SECURITY_HEADERS
from ldncare.web.settings import WebSettings


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = WebSettings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        secret_key="k" * 48,
        cookie_secure=False,
        max_body_bytes=64 * 1024,
    )
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("secret internals: /srv/ldncare/db password=hunter2")

    app.add_api_route("/api/boom", boom)
    app.add_api_route("/boom-page", boom)
    return app


def _has_security_headers(headers: object) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name  # type: ignore[index]


def test_oversized_upload_refused_with_413_and_every_security_header(app: FastAPI) -> None:
    with TestClient(app) as client:
        r = client.post(
            "/api/session", content=b"x" * (65 * 1024), headers={"content-type": "application/json"}
        )
    assert r.status_code == 413
    _has_security_headers(r.headers)


@pytest.mark.parametrize("path", ["/api/boom", "/boom-page"])
def test_a_crash_answers_500_with_every_security_header_and_no_internals(
    app: FastAPI, path: str
) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get(path)
    assert r.status_code == 500
    _has_security_headers(r.headers)
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert r.json()["detail"][0]["msg"].startswith("internal error")
