"""The Bulk access token goes only to the EHR's own server over https (review #19/#21 H2,
H3, M4, L8): an error file or a status URL on another host, an http link from an https base,
an http ``--fhir-server`` and an EHR that keeps answering 401 are each refused or bounded, and a
malformed error file is reported, not a crash. The EHR is an ``httpx.MockTransport`` that
records who received the token."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.errors import InvalidInput
from ldncare.fhir.bulk_export import (
    MAX_UNAUTHORIZED,
    BulkExportFailed,
    BulkSettings,
    pull_export,
    same_server,
)

BASE = "https://ehr.example/fhir"
STATUS = "https://ehr.example/fhir/status/1"
TOKEN = "BULK-ACCESS-TOKEN"
OUTCOME = b'{"resourceType":"OperationOutcome","issue":[{"diagnostics":"Observation failed"}]}\n'
PATIENT = b'{"resourceType":"Patient","id":"p1"}\n'


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path_factory.mktemp("bulk") / "bulk.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


class Ehr:
    """A mock EHR: token, kick-off, status, files; every request and its Authorization."""

    def __init__(
        self,
        manifest: dict[str, Any] | None,
        *,
        status_url: str = STATUS,
        status: Callable[[int], int] = lambda _n: 200,
        files: dict[str, bytes] | None = None,
    ) -> None:
        self.manifest = manifest
        self.status_url = status_url
        self.status = status
        self.files = files or {}
        self.log: list[tuple[str, str | None]] = []
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.log.append((url, request.headers.get("authorization")))
        if url == "https://ehr.example/token":
            return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 300})
        if "$export" in url:
            return httpx.Response(202, headers={"Content-Location": self.status_url})
        if url == self.status_url:
            self.polls += 1
            code = self.status(self.polls)
            return httpx.Response(code, json=self.manifest) if code == 200 else httpx.Response(code)
        if url in self.files:
            return httpx.Response(200, content=self.files[url])
        return httpx.Response(404)

    def token_sent_to(self) -> set[str]:
        return {u for u, auth in self.log if auth and TOKEN in auth}


def _pull(ehr: Ehr, folder: Path, key_file: Path, base: str = BASE, **bounds: float) -> Any:
    settings = BulkSettings(
        client_id="ldncare-bulk",
        private_key_file=key_file,
        algorithm="ES384",
        token_url="https://ehr.example/token",
        **bounds,
    )
    return pull_export(base, folder, settings=settings, transport=httpx.MockTransport(ehr))


def test_an_error_file_on_another_host_is_not_sent_the_token(
    tmp_path: Path, key_file: Path
) -> None:
    ehr = Ehr(
        {
            "requiresAccessToken": True,
            "output": [],
            "error": [{"type": "OperationOutcome", "url": "https://evil.example/err.ndjson"}],
        },
        files={"https://evil.example/err.ndjson": OUTCOME},
    )
    result = _pull(ehr, tmp_path, key_file)
    assert all(url.startswith("https://ehr.example/") for url in ehr.token_sent_to())
    assert "https://evil.example/err.ndjson" not in [u for u, _ in ehr.log]
    assert any("another server" in text for text in result.server_errors)


def test_an_output_link_downgraded_to_http_on_the_same_host_is_not_sent_the_token(
    tmp_path: Path, key_file: Path
) -> None:
    http_url = "http://ehr.example/fhir/files/Patient_1.ndjson"
    ehr = Ehr(
        {"requiresAccessToken": True, "output": [{"type": "Patient", "url": http_url}]},
        files={http_url: PATIENT},
    )
    result = _pull(ehr, tmp_path, key_file)
    assert not any(url.startswith("http://") for url in ehr.token_sent_to())
    assert "Patient_1.ndjson" in result.failed
    assert "not https" in result.failed["Patient_1.ndjson"]


def test_an_error_file_downgraded_to_http_is_not_sent_the_token(
    tmp_path: Path, key_file: Path
) -> None:
    http_url = "http://ehr.example/fhir/files/errors.ndjson"
    ehr = Ehr(
        {"requiresAccessToken": True, "output": [], "error": [{"url": http_url}]},
        files={http_url: OUTCOME},
    )
    _pull(ehr, tmp_path, key_file)
    assert not any(url.startswith("http://") for url in ehr.token_sent_to())


def test_a_status_url_on_another_host_is_refused_before_the_token_goes_there(
    tmp_path: Path, key_file: Path
) -> None:
    ehr = Ehr({"output": []}, status_url="https://evil.example/status/1")
    with pytest.raises(BulkExportFailed, match="status URL on another server"):
        _pull(ehr, tmp_path, key_file)
    assert all(url.startswith("https://ehr.example/") for url in ehr.token_sent_to())


def test_the_same_server_output_is_still_downloaded_with_the_token(
    tmp_path: Path, key_file: Path
) -> None:
    url = "https://ehr.example/fhir/files/Patient_1.ndjson"
    ehr = Ehr(
        {
            "requiresAccessToken": True,
            "output": [{"type": "Patient", "url": url}],
            "error": [{"url": "https://ehr.example/fhir/files/errors.ndjson"}],
        },
        files={url: PATIENT, "https://ehr.example/fhir/files/errors.ndjson": OUTCOME},
    )
    result = _pull(ehr, tmp_path, key_file)
    assert result.downloaded == ["Patient_1.ndjson"]
    assert result.server_errors == ["Observation failed"]
    assert url in ehr.token_sent_to()


def test_a_plain_http_fhir_server_on_another_machine_is_refused(
    tmp_path: Path, key_file: Path
) -> None:
    ehr = Ehr({"output": []})
    with pytest.raises(InvalidInput, match="must use https") as caught:
        _pull(ehr, tmp_path, key_file, base="http://ehr.example/fhir")
    assert caught.value.field == "--fhir-server"
    assert ehr.log == []  # nothing was sent, not even the token request


def test_an_ehr_that_answers_401_forever_is_asked_a_bounded_number_of_times_with_pauses(
    tmp_path: Path, key_file: Path
) -> None:
    ehr = Ehr(None, status=lambda n: 401 if n < 50 else 500)
    started = time.monotonic()
    with pytest.raises(BulkExportFailed, match="401"):
        _pull(ehr, tmp_path, key_file, max_wait_seconds=0.5)
    assert ehr.polls == MAX_UNAUTHORIZED + 1
    assert time.monotonic() - started >= 0.9  # it paused between the refusals


def test_one_401_gets_a_new_token_and_the_export_goes_on(tmp_path: Path, key_file: Path) -> None:
    ehr = Ehr({"output": []}, status=lambda n: 401 if n == 1 else 200)
    result = _pull(ehr, tmp_path, key_file)
    assert ehr.polls == 2
    assert result.failed == {}
    token_requests = [u for u, _ in ehr.log if u == "https://ehr.example/token"]
    assert len(token_requests) == 2  # the refused token was replaced


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]\n",
        b"42\n",
        b'"text"\n',
        b'{"resourceType":"OperationOutcome","issue":7}\n',
        b'{"resourceType":"OperationOutcome","issue":["x",{"details":"y"}]}\n',
        b"not json\n",
    ],
)
def test_an_error_file_with_a_line_that_is_not_an_outcome_is_reported_not_a_crash(
    tmp_path: Path, key_file: Path, body: bytes
) -> None:
    url = "https://ehr.example/fhir/files/errors.ndjson"
    ehr = Ehr(
        {"requiresAccessToken": False, "output": [], "error": [{"url": url}]},
        files={url: body + OUTCOME},
    )
    result = _pull(ehr, tmp_path, key_file)
    assert "Observation failed" in result.server_errors


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    host=st.sampled_from(["ehr.example", "EHR.example", "evil.example", "ehr.example:8443"]),
)
def test_the_token_server_check_never_accepts_another_scheme_or_host(
    scheme: str, host: str
) -> None:
    url = f"{scheme}://{host}/fhir/x.ndjson"
    accepted = same_server(url, BASE)
    assert accepted == (scheme.lower() == "https" and host.lower() == "ehr.example")
