"""Where CDS card links point (integrator review M3): ``LDNCARE_CDS_APP_URL`` when set, else the
server of ``LDNCARE_CDS_PUBLIC_URL`` (one server serves the app and CDS Hooks), and only with
neither set the local ``http://localhost:8000`` of a demo."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ldncare.cdshooks import CdsSettings, create_cds_app
from ldncare.cdshooks.settings import LOCAL_APP_URL
from tests.integration.test_cdshooks import (
    ISSUER,
    SECRET,
    FakeFhir,
    cards_of,
    hook_request,
    on_ldn_and_oxycodone,
    post,
)


def cards_with(**settings: Any) -> list[dict[str, Any]]:
    config = CdsSettings(trusted_issuers={ISSUER: {"hs256_secret": SECRET}}, **settings)
    client = TestClient(create_cds_app(config, transport=httpx.MockTransport(FakeFhir())))
    body = hook_request("patient-view", resources=on_ldn_and_oxycodone())
    public = settings.get("public_url")
    base = public.rstrip("/").removesuffix("/cds-services") if public else None
    claims = {"aud": f"{base}/cds-services/ldncare-patient-view"} if base else {}
    cards = cards_of(post(client, "ldncare-patient-view", body, **claims))
    assert cards
    return cards


def link_bases(cards: list[dict[str, Any]]) -> set[str]:
    urls = {c["source"]["url"] for c in cards}
    urls |= {
        link["url"].split("/patients/by-external/")[0]
        for c in cards
        for link in c.get("links", [])
        if link.get("type") == "absolute"
    }
    return urls


@pytest.mark.parametrize(
    "public_url",
    ["https://cds.example.org", "https://cds.example.org/", "https://cds.example.org/cds-services"],
)
def test_card_links_default_to_the_public_url_the_operator_set(public_url: str) -> None:
    assert link_bases(cards_with(public_url=public_url)) == {"https://cds.example.org"}


def test_the_app_url_wins_over_the_public_url() -> None:
    cards = cards_with(public_url="https://cds.example.org", app_url="https://app.example.org/")
    assert link_bases(cards) == {"https://app.example.org"}


def test_with_neither_set_the_links_are_the_local_demo_address() -> None:
    assert link_bases(cards_with()) == {LOCAL_APP_URL}
    assert "localhost" in CdsSettings().links_base()
