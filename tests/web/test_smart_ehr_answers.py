"""What ldncare does with odd answers from the EHR's FHIR server during a SMART launch
(review #19/#21 H3, L3): a ``next`` link that drops to plain http or leaves the server is not
followed with the token, and a searchset whose ``entry`` or ``link`` is not a list is the
"FHIR server could not be read" page, not a 500. The FHIR server is an httpx.MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.web.smart.ehr_record import read_record
from ldncare.web.smart.errors import FhirServerDown
from ldncare.web.smart.settings import SmartSettings

BASE = "https://ehr.example/fhir"
TOKEN = "SMART-ACCESS-TOKEN"
SETTINGS = SmartSettings(client_id="ldncare", redirect_uri="https://ldn.example/smart/callback")


def _searchset(entries: Any = None, links: Any = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if entries is not None:
        bundle["entry"] = entries
    if links is not None:
        bundle["link"] = links
    return bundle


class Fhir:
    """Answers the Patient read and every search; Condition gets ``condition``."""

    def __init__(self, condition: dict[str, Any]) -> None:
        self.condition = condition
        self.requests: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append((url, request.headers.get("authorization")))
        path = request.url.path
        if path == "/fhir/Patient/rosa":
            return httpx.Response(
                200, json={"resourceType": "Patient", "id": "rosa", "birthDate": "1971-05-02"}
            )
        if "/Condition" in path:
            return httpx.Response(200, json=self.condition)
        return httpx.Response(200, json=_searchset([]))

    def token_sent_to(self) -> set[str]:
        return {u for u, auth in self.requests if auth and TOKEN in auth}


def _read(fhir: Fhir) -> dict[str, Any]:
    return asyncio.run(
        read_record(BASE, TOKEN, "rosa", SETTINGS, transport=httpx.MockTransport(fhir))
    )


def test_rosas_conditions_with_a_next_page_on_plain_http_are_not_read_with_her_token() -> None:
    fhir = Fhir(
        _searchset(
            [],
            [{"relation": "next", "url": "http://ehr.example/fhir/Condition?page=2"}],
        )
    )
    with pytest.raises(FhirServerDown, match="plain http"):
        _read(fhir)
    assert not any(url.startswith("http://") for url in fhir.token_sent_to())


def test_a_next_page_on_another_server_is_not_read() -> None:
    fhir = Fhir(
        _searchset([], [{"relation": "next", "url": "https://other.example/fhir/Condition?p=2"}])
    )
    with pytest.raises(FhirServerDown, match="another server"):
        _read(fhir)
    assert all(url.startswith(BASE) for url in fhir.token_sent_to())


def test_a_next_page_on_the_same_https_server_is_followed() -> None:
    page2 = f"{BASE}/Condition?patient=rosa&page=2"
    condition = {
        "resourceType": "Condition",
        "id": "pn",
        "subject": {"reference": "Patient/rosa"},
        "code": {"text": "Pudendal neuralgia"},
    }

    class Paged(Fhir):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            if str(request.url) == page2:
                self.requests.append((page2, request.headers.get("authorization")))
                return httpx.Response(200, json=_searchset([{"resource": condition}]))
            return super().__call__(request)

    fhir = Paged(_searchset([], [{"relation": "next", "url": page2}]))
    bundle = _read(fhir)
    assert any(e["resource"].get("id") == "pn" for e in bundle["entry"])
    assert page2 in fhir.token_sent_to()


@pytest.mark.parametrize(
    "bundle",
    [
        _searchset(entries=5),
        _searchset(entries="x"),
        _searchset(entries=[], links=7),
        _searchset(entries={"resource": {}}),
        _searchset(entries=[], links={"relation": "next"}),
    ],
    ids=["entry-number", "entry-string", "link-number", "entry-object", "link-object"],
)
def test_a_searchset_whose_entry_or_link_is_not_a_list_is_a_fhir_server_error(
    bundle: dict[str, Any],
) -> None:
    with pytest.raises(FhirServerDown, match="not a valid FHIR Bundle"):
        _read(Fhir(bundle))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(entry=json_values, link=json_values)
def test_any_shape_of_entry_and_link_reads_or_is_a_fhir_server_error_never_a_crash(
    entry: Any, link: Any
) -> None:
    with contextlib.suppress(FhirServerDown):  # any other exception fails the test
        _read(Fhir({"resourceType": "Bundle", "type": "searchset", "entry": entry, "link": link}))
