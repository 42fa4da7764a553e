"""The dashboard list is built once (``web/dashboard.py``): the page and the API show the same
patients with the same status, the page with the patients needing action first."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ldncare.web.app import create_app
from ldncare.web.demo import DEMO_PASSWORD, load_demo
from ldncare.web.settings import WebSettings

TODAY = date(2026, 6, 1)


@pytest.fixture(params=[0, 60], ids=["on the demo day", "two months later"])
def demo_client(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    settings = WebSettings(database_url=url, secret_key="k" * 48, cookie_secure=False)
    today = TODAY + timedelta(days=request.param)
    app = create_app(settings, clock=lambda: today)
    load_demo(app.state.engine, today=TODAY)
    with TestClient(app) as client:
        r = client.post("/api/session", json={"username": "clinician", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        yield client


def page_rows(page: str) -> list[tuple[int, list[str]]]:
    """(patient id, the status tags) of each dashboard row, in page order."""
    body = page[page.index('<table id="patients">') :]
    rows = re.findall(r"<tr>\s*<td><a href=\"/patients/(\d+)\">(.*?)</tr>", body, re.S)
    return [
        (
            int(pid),
            [html.unescape(t) for t in re.findall(r'<span class="tag[^"]*">(.*?)</span>', r)],
        )
        for pid, r in rows
    ]


def test_a_demo_clinician_sees_the_same_patients_and_status_on_the_page_and_in_the_api(
    demo_client: TestClient,
) -> None:
    api = demo_client.get("/api/patients")
    assert api.status_code == 200
    by_id = {p["id"]: p["status"] for p in api.json()}
    page = demo_client.get("/")
    assert page.status_code == 200
    rows = page_rows(page.text)
    assert len(rows) == len(by_id) >= 6
    for pid, tags in rows:
        status = by_id[pid]
        assert tags == [status["label"], *status["flags"]], pid


def test_the_page_lists_the_safety_alert_first_and_flagged_patients_before_the_rest(
    demo_client: TestClient,
) -> None:
    stages = {p["id"]: p["status"] for p in demo_client.get("/api/patients").json()}
    order = [pid for pid, _ in page_rows(demo_client.get("/").text)]
    urgency = [(stages[pid]["stage"] != "safety_alert", not stages[pid]["flags"]) for pid in order]
    assert urgency == sorted(urgency)
    assert stages[order[0]]["stage"] == "safety_alert"
