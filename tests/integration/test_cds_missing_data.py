"""CDS Hooks: never silent when data is missing, bounded in time (issue #18, items 1-3 and 5).

The EHR's FHIR server is a real HTTP server on 127.0.0.1 (a thread in this process) that
answers, fails, stalls, pages or floods as each case needs; ldncare reaches it over the
network, as in production. Nothing here connects to any other address.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.cdshooks import CdsSettings, create_cds_app
from ldncare.cdshooks.fetch import PATIENT_TEMPLATES, server_allowed
from tests.integration.test_cdshooks import (
    ISSUER,
    SECRET,
    TODAY,
    cards_of,
    condition,
    fhir_patient,
    med_request,
    post,
    prefetch_for,
    searchset,
    token,
)

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[str], Reply | None]


def fhir_json(resource: Any, status: int = 200) -> Reply:
    body = json.dumps(resource).encode()
    return status, {"Content-Type": "application/fhir+json"}, body


def operation_outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": text}],
    }


class LocalFhir:
    """A FHIR server on 127.0.0.1: ``route(path_and_query)`` gives the reply (``None``: an
    empty searchset, or the Patient for a read); ``delay`` stalls every request."""

    def __init__(self, route: Route | None = None, *, delay: float = 0.0) -> None:
        self.route = route or (lambda _: None)
        self.delay = delay
        self.seen: list[str] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.seen.append(self.path)
                outer.headers.append(dict(self.headers))
                if outer.delay:
                    time.sleep(outer.delay)
                path = self.path.removeprefix("/fhir/")
                reply = outer.route(path)
                if reply is None:
                    if path.startswith("Patient/"):
                        reply = fhir_json(fhir_patient(path.split("/")[1].split("?")[0]))
                    else:
                        reply = fhir_json(searchset([]))
                status, headers, body = reply
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers and "X-No-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                if "X-No-Length" in headers:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                # The client may stop reading: what a byte cap does.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalFhir:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [urlsplit(p).path.removeprefix("/fhir/") for p in self.seen]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/fhir"


def client(**overrides: Any) -> TestClient:
    config = CdsSettings(
        trusted_issuers={ISSUER: {"hs256_secret": SECRET}},
        app_url="https://ldncare.test",
        **overrides,
    )
    return TestClient(create_cds_app(config))


def request(
    hook: str,
    server: str | None,
    *,
    prefetch: dict[str, Any] | None = None,
    drafts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "6f1c1c1e-0000-4000-8000-000000000001",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
    }
    if server is not None:
        body["fhirServer"] = server
        body["fhirAuthorization"] = {
            "access_token": "ehr-token-1",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.read",
            "subject": "ldncare",
        }
    if prefetch is not None:
        body["prefetch"] = prefetch
    if drafts is not None:
        body["context"]["draftOrders"] = searchset(drafts) | {"type": "collection"}
        if hook == "order-select":
            body["context"]["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    return body


def ldn_capsule() -> dict[str, Any]:
    return med_request(
        "naltrexone 4.5 mg capsule (compounded)", authored=TODAY - timedelta(weeks=10)
    )


def oxycodone() -> dict[str, Any]:
    return med_request("oxycodone hydrochloride 5 mg oral tablet")


def only(resource_type: str, resources: list[dict[str, Any]]) -> Route:
    """Searches of ``resource_type`` find ``resources``; everything else finds nothing."""

    def route(path: str) -> Reply | None:
        if path.startswith(f"{resource_type}?"):
            return fhir_json(searchset(resources))
        return None

    return route


@pytest.fixture
def fhir() -> Iterator[Callable[..., LocalFhir]]:
    servers: list[LocalFhir] = []

    def start(route: Route | None = None, **kw: Any) -> LocalFhir:
        server = LocalFhir(route, **kw).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def missing_keys(response: httpx.Response) -> list[str]:
    assert response.status_code == 412, response.text
    body = response.json()
    assert body["error"].startswith("ldncare could not read data it needs")
    return [m["prefetch"] for m in body["missing"]]


# --------------------------------------------------------------------------- 1. missing -> 412


def test_opioid_order_with_no_prefetch_and_an_unreachable_fhir_server_is_412() -> None:
    body = request(
        "order-sign",
        closed_port_url(),
        drafts=[med_request("tramadol 50 mg tablet", rid="t1", status="draft")],
    )
    response = post(client(), "ldncare-order-sign", body)
    assert missing_keys(response) == list(PATIENT_TEMPLATES)
    assert all("ConnectError" in m["reason"] for m in response.json()["missing"])


def test_patient_view_on_a_fhir_server_answering_500_is_412_naming_the_query(
    fhir: Callable[..., LocalFhir],
) -> None:
    def broken_meds(path: str) -> Reply | None:
        return fhir_json(operation_outcome("db down"), 500) if "MedicationRequest" in path else None

    server = fhir(broken_meds)
    response = post(client(), "ldncare-patient-view", request("patient-view", server.base))
    assert missing_keys(response) == ["medications"]
    (item,) = response.json()["missing"]
    assert item["query"].startswith("MedicationRequest?patient=p1")
    assert "HTTP 500" in item["reason"]


def test_patient_view_with_no_prefetch_and_no_fhir_server_is_412() -> None:
    response = post(client(), "ldncare-patient-view", request("patient-view", None))
    assert missing_keys(response) == list(PATIENT_TEMPLATES)
    assert "names no fhirServer" in response.json()["missing"][0]["reason"]


def test_full_prefetch_needs_no_fhir_server_and_is_checked() -> None:
    prefetch = prefetch_for(
        [fhir_patient(), condition("Pudendal neuralgia"), ldn_capsule(), oxycodone()]
    )
    body = request("patient-view", closed_port_url(), prefetch=prefetch)
    cards = cards_of(post(client(), "ldncare-patient-view", body))
    assert "critical" in [c["indicator"] for c in cards]


def test_an_order_ldncare_has_no_check_for_needs_no_data() -> None:
    draft = med_request("amoxicillin 500 mg capsule", rid="a1", status="draft")
    body = request("order-select", closed_port_url(), drafts=[draft])
    assert cards_of(post(client(), "ldncare-order-select", body)) == []


# ------------------------------------------------------------- 2. OperationOutcome prefetch


def test_operation_outcome_medications_prefetch_is_fetched_and_the_opioid_found(
    fhir: Callable[..., LocalFhir],
) -> None:
    server = fhir(only("MedicationRequest", [ldn_capsule(), oxycodone()]))
    prefetch = prefetch_for([fhir_patient(), condition("Pudendal neuralgia")])
    prefetch["medications"] = operation_outcome("MedicationRequest search timed out")
    body = request("patient-view", server.base, prefetch=prefetch)
    cards = cards_of(post(client(), "ldncare-patient-view", body))
    assert "critical" in [c["indicator"] for c in cards]
    # Only the failed prefetch was fetched, with the EHR's token.
    assert [p.split("?")[0] for p in server.paths()] == ["MedicationRequest"]
    assert server.headers[0]["Authorization"] == "Bearer ehr-token-1"


def test_operation_outcome_prefetch_without_a_server_is_412_quoting_the_ehr() -> None:
    prefetch = prefetch_for([fhir_patient()])
    prefetch["medications"] = operation_outcome("MedicationRequest search timed out")
    response = post(
        client(), "ldncare-patient-view", request("patient-view", None, prefetch=prefetch)
    )
    assert missing_keys(response) == ["medications"]
    assert "MedicationRequest search timed out" in response.json()["missing"][0]["reason"]


def test_fhir_server_answering_an_operation_outcome_is_missing_data(
    fhir: Callable[..., LocalFhir],
) -> None:
    def outcome(path: str) -> Reply | None:
        return fhir_json(operation_outcome("too costly")) if path.startswith("Condition") else None

    server = fhir(outcome)
    response = post(client(), "ldncare-patient-view", request("patient-view", server.base))
    assert missing_keys(response) == ["conditions"]
    assert "too costly" in response.json()["missing"][0]["reason"]


# ------------------------------------------------------------------------ 3. bounded fallback


def test_a_stalled_fhir_server_is_412_at_the_deadline_not_after_it(
    fhir: Callable[..., LocalFhir],
) -> None:
    server = fhir(delay=3.0)
    started = time.monotonic()
    response = post(
        client(fhir_deadline=0.5), "ldncare-patient-view", request("patient-view", server.base)
    )
    elapsed = time.monotonic() - started
    assert missing_keys(response) == list(PATIENT_TEMPLATES)
    assert all("0.5 s deadline" in m["reason"] for m in response.json()["missing"])
    assert elapsed < 2.0, elapsed


def test_fallback_queries_run_at_the_same_time(fhir: Callable[..., LocalFhir]) -> None:
    # 7 templates x 0.4 s each: one after another would take 2.8 s.
    server = fhir(delay=0.4)
    started = time.monotonic()
    response = post(
        client(fhir_deadline=5), "ldncare-patient-view", request("patient-view", server.base)
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert len(server.seen) == len(PATIENT_TEMPLATES)
    assert elapsed < 2.0, elapsed


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-length"])
def test_a_flood_of_a_response_is_cut_at_the_byte_cap(
    fhir: Callable[..., LocalFhir], declared: bool
) -> None:
    big = json.dumps(searchset([condition("x" * 1000) for _ in range(200)])).encode()

    def flood(path: str) -> Reply | None:
        if not path.startswith("Condition"):
            return None
        return 200, ({} if declared else {"X-No-Length": "1"}), big

    server = fhir(flood)
    response = post(
        client(fhir_max_bytes=50_000), "ldncare-patient-view", request("patient-view", server.base)
    )
    assert missing_keys(response) == ["conditions"]
    assert "50000 byte limit" in response.json()["missing"][0]["reason"]


def paged(pages: list[list[dict[str, Any]]], base: Callable[[], str], next_base: str = "") -> Route:
    """MedicationRequest searches answered in pages linked by ``next``."""

    def route(path: str) -> Reply | None:
        if not path.startswith("MedicationRequest"):
            return None
        page = int(path.split("page=")[1]) if "page=" in path else 0
        bundle = searchset(pages[page])
        if page + 1 < len(pages):
            url = f"{next_base or base()}/MedicationRequest?patient=p1&page={page + 1}"
            bundle["link"] = [{"relation": "next", "url": url}]
        return fhir_json(bundle)

    return route


def test_an_opioid_on_the_second_page_is_found(fhir: Callable[..., LocalFhir]) -> None:
    holder: list[LocalFhir] = []
    server = fhir(paged([[ldn_capsule()], [oxycodone()]], lambda: holder[0].base))
    holder.append(server)
    response = post(client(), "ldncare-patient-view", request("patient-view", server.base))
    assert "critical" in [c["indicator"] for c in cards_of(response)]
    assert sum("page=1" in p for p in server.seen) == 1


def test_more_pages_than_the_limit_is_412(fhir: Callable[..., LocalFhir]) -> None:
    holder: list[LocalFhir] = []
    server = fhir(paged([[ldn_capsule()]] * 4, lambda: holder[0].base))
    holder.append(server)
    response = post(
        client(fhir_max_pages=3), "ldncare-patient-view", request("patient-view", server.base)
    )
    assert missing_keys(response) == ["medications"]
    assert "more than 3 pages" in response.json()["missing"][0]["reason"]
    assert sum("MedicationRequest" in p for p in server.seen) == 3


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "protocol-relative"])
def test_a_next_link_to_another_server_is_not_followed(
    fhir: Callable[..., LocalFhir], relative: bool
) -> None:
    elsewhere = fhir()
    target = elsewhere.base.removeprefix("http:") if relative else elsewhere.base
    server = fhir(paged([[ldn_capsule()], [oxycodone()]], lambda: "", target))
    response = post(client(), "ldncare-patient-view", request("patient-view", server.base))
    assert missing_keys(response) == ["medications"]
    assert "leads off the FHIR server" in response.json()["missing"][0]["reason"]
    assert elsewhere.seen == []  # the EHR's token went nowhere else


def test_demo_mode_fetches_from_a_loopback_server_by_default(
    fhir: Callable[..., LocalFhir],
) -> None:
    server = fhir(only("MedicationRequest", [ldn_capsule(), oxycodone()]))
    demo = client(demo=True)
    response = demo.post(
        "/cds-services/ldncare-patient-view", json=request("patient-view", server.base)
    )
    assert "critical" in [c["indicator"] for c in cards_of(response)]


def test_demo_mode_fetches_nothing_from_a_server_off_the_allow_list(
    fhir: Callable[..., LocalFhir],
) -> None:
    server = fhir()
    demo = client(demo=True, demo_fhir_servers=[])
    response = demo.post(
        "/cds-services/ldncare-patient-view", json=request("patient-view", server.base)
    )
    assert missing_keys(response) == list(PATIENT_TEMPLATES)
    assert "LDNCARE_CDS_DEMO_FHIR_SERVERS" in response.json()["missing"][0]["reason"]
    assert server.seen == []


def test_demo_mode_refuses_a_remote_fhir_server_before_any_connection() -> None:
    attempts: list[httpx.Request] = []

    def record(req: httpx.Request) -> httpx.Response:  # never reached: no network at all
        attempts.append(req)
        return httpx.Response(500)

    config = CdsSettings(demo=True)
    demo = TestClient(create_cds_app(config, transport=httpx.MockTransport(record)))
    for server in (
        "https://fhir.example.org/r4",
        "http://localhost.example.org/fhir",
        "http://127.0.0.1.example.org/fhir",
    ):
        response = demo.post(
            "/cds-services/ldncare-patient-view", json=request("patient-view", server)
        )
        assert missing_keys(response) == list(PATIENT_TEMPLATES), server
    assert attempts == []


@pytest.mark.parametrize(
    ("server", "allowed", "ok"),
    [
        ("http://127.0.0.1:8080/fhir", ["loopback"], True),
        ("http://localhost/fhir", ["loopback"], True),
        ("http://[::1]:9/fhir", ["loopback"], True),
        ("http://10.0.0.1/fhir", ["loopback"], False),
        ("https://ehr.test/r4", ["https://ehr.test/r4"], True),
        ("https://ehr.test/r4/", ["https://ehr.test/r4"], True),
        ("https://ehr.test/r4x", ["https://ehr.test/r4"], False),
        ("https://ehr.test.evil/r4", ["https://ehr.test"], False),
        ("http://127.0.0.1/fhir", [], False),
    ],
)
def test_demo_allow_list_matches_whole_base_urls(server: str, allowed: list[str], ok: bool) -> None:
    assert server_allowed(server, allowed) is ok


# --------------------------------------------------------------------- never silent (property)

FAILURES = {
    "http-500": lambda req: httpx.Response(500, json=operation_outcome("boom")),
    "http-404": lambda req: httpx.Response(404, json=operation_outcome("gone")),
    "not-json": lambda req: httpx.Response(200, content=b"<html>"),
    "outcome": lambda req: httpx.Response(200, json=operation_outcome("refused")),
    "refused": lambda req: (_ for _ in ()).throw(httpx.ConnectError("refused", request=req)),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefetched=st.sets(st.sampled_from(sorted(PATIENT_TEMPLATES))),
    as_outcome=st.sets(st.sampled_from(sorted(PATIENT_TEMPLATES))),
    failure=st.sampled_from(sorted(FAILURES)),
    hook=st.sampled_from(["patient-view", "order-sign"]),
)
def test_a_check_is_never_answered_200_without_every_template_read(
    prefetched: set[str], as_outcome: set[str], failure: str, hook: str
) -> None:
    """Whatever the EHR prefetched and however its FHIR server fails, the service answers
    200 only when every template was read, and otherwise 412 naming exactly the rest."""
    full = prefetch_for([fhir_patient(), ldn_capsule()])
    prefetch = {k: full[k] for k in prefetched}
    for key in as_outcome & prefetched:
        prefetch[key] = operation_outcome("EHR prefetch failed")
    body = request(
        hook,
        "https://ehr.test/r4",
        prefetch=prefetch,
        drafts=[oxycodone() | {"status": "draft"}] if hook == "order-sign" else None,
    )
    config = CdsSettings(trusted_issuers={ISSUER: {"hs256_secret": SECRET}})
    app = create_cds_app(config, transport=httpx.MockTransport(FAILURES[failure]))
    service = f"ldncare-{hook}"
    response = TestClient(app).post(
        f"/cds-services/{service}",
        json=body,
        headers={"Authorization": f"Bearer {token(service)}"},
    )
    unread = [k for k in PATIENT_TEMPLATES if k not in prefetched or k in as_outcome]
    if unread:
        assert missing_keys(response) == unread
    else:
        assert response.status_code == 200 and "cards" in response.json()
