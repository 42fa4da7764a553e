"""Issue #19: the administrators' accounts page: list, disable (ending the sessions), enable
(not reviving them), audited with the administrator as who; nobody else may use it."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldncare.store.models import AuditRow
from tests.web.conftest import World
from tests.web.test_pages import login_page


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_admin_disables_a_clinician_from_the_page_and_her_open_session_ends(
    world: World,
) -> None:
    # The clinician is logged in on another device (a second client with her own cookie).
    from fastapi.testclient import TestClient

    other = TestClient(world.client.app)
    r = other.post("/api/session", json={"username": "clin1", "password": "correct horse battery"})
    assert r.status_code == 200
    assert other.get("/api/patients").status_code == 200

    login_page(world, "root")
    listing = world.client.get("/admin/users")
    assert listing.status_code == 200
    assert "clin1" in listing.text and "clinic-1" in listing.text
    r = world.client.post(
        "/admin/users/clin1/disable",
        data={"csrf_token": _csrf(listing.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert other.get("/api/patients").status_code == 401
    page = world.client.get("/admin/users?msg=disabled").text
    assert "Account disabled" in page
    assert re.search(r"clin1</td>.*?disabled</td>", page, flags=re.S)

    r = world.client.post(
        "/admin/users/clin1/enable", data={"csrf_token": _csrf(page)}, follow_redirects=False
    )
    assert r.status_code == 303
    assert other.get("/api/patients").status_code == 401  # the old cookie stays dead
    with Session(world.engine) as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.action.in_(("disable", "enable")))).all()
        assert [(a.who, a.action) for a in rows] == [
            ("web:root", "disable"),
            ("web:root", "enable"),
        ]


def test_admin_cannot_disable_herself(world: World) -> None:
    token = login_page(world, "root")
    r = world.client.post("/admin/users/root/disable", data={"csrf_token": token})
    assert r.status_code == 422
    assert "your own account" in r.text
    assert world.client.get("/admin/users").status_code == 200


def test_disable_without_the_csrf_token_is_refused(world: World) -> None:
    login_page(world, "root")
    r = world.client.post("/admin/users/clin1/disable", data={})
    assert r.status_code == 403
    world.login("clin1")


def test_clinicians_do_not_see_the_accounts_page_or_its_link(world: World) -> None:
    login_page(world, "clin1")
    assert world.client.get("/admin/users").status_code == 403
    assert 'href="/admin/users"' not in world.client.get("/").text
    login_page(world, "root")
    assert 'href="/admin/users"' in world.client.get("/").text
