"""Issue #18, shared state: a replayed CDS Hooks JWT is refused by every server process on one
database, not only by the one that saw it first. Two real servers (uvicorn, loopback sockets)
on one PostgreSQL -- and on one SQLite file, as ``ldncare serve --workers 2`` runs -- receive
the same signed token: the first answers, the second refuses it as already used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.hardening.test_soak import _free_port
from tests.integration.followup_db import db_url  # noqa: F401

ISSUER = "https://ehr.test"
SECRET = "replay-test-secret-long-enough-for-hs256"
#: What the EHR signs as aud, whichever server (port) the call reaches: the proxy's URL.
PUBLIC = "https://cds.hospital.test"
SERVICE = "ldncare-patient-view"
CALL = {
    "hook": "patient-view",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {"userId": "Practitioner/1", "patientId": "p1"},
    "prefetch": {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female"},
        **{
            key: {"resourceType": "Bundle", "type": "searchset", "entry": []}
            for key in ("conditions", "medications", "statements", "allergies", "labs", "weight")
        },
    },
}


class Server:
    def __init__(self, database_url: str, log: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LDNCARE_DATABASE_URL": database_url,
            "LDNCARE_SECRET_KEY": "s" * 48,
            "LDNCARE_COOKIE_SECURE": "false",
            "LDNCARE_DEMO": "false",
            "LDNCARE_CDS_TRUSTED_ISSUERS": json.dumps({ISSUER: {"hs256_secret": SECRET}}),
            "LDNCARE_CDS_PUBLIC_URL": PUBLIC,
        }
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "ldncare.web.app:create_app",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not start:\n" + self.log.read_text()[-3000:])

    def call(self, token: str) -> httpx.Response:
        return httpx.post(f"{self.base}/cds-services/{SERVICE}", json=CALL, timeout=30,
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def two_servers(db_url: str, tmp_path: Path) -> Iterator[tuple[Server, Server]]:  # noqa: F811
    # db_url is migrated already: the two servers start on the same schema without racing.
    servers = [Server(db_url, tmp_path / f"server{i}.log") for i in (1, 2)]
    try:
        for s in servers:
            s.wait()
        yield servers[0], servers[1]
    finally:
        for s in servers:
            s.stop()


def _token() -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": f"{PUBLIC}/cds-services/{SERVICE}", "exp": now + 120,
              "iat": now, "jti": str(uuid.uuid4())}  # fmt: skip
    return jwt.encode(claims, SECRET, "HS256")


def test_a_token_replayed_to_another_server_process_is_refused(
    two_servers: tuple[Server, Server],
) -> None:
    first, second = two_servers
    token = _token()
    answered = first.call(token)
    assert answered.status_code == 200, answered.text
    replayed = second.call(token)
    assert replayed.status_code == 401, replayed.text
    assert "already used" in replayed.json()["error"]
    # ... and either way round; a fresh token is still welcome on both.
    other = _token()
    assert second.call(other).status_code == 200
    assert first.call(other).status_code == 401
    assert first.call(_token()).status_code == 200
    assert second.call(_token()).status_code == 200
