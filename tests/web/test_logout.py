"""Logging out ends the account's sessions on the server: a copied cookie stops working."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ldncare.web.auth import SESSION_COOKIE
from tests.web.conftest import World
from tests.web.test_pages import login_page


def test_a_cookie_copied_before_api_logout_is_refused_after_it(world: World) -> None:
    token = world.login("clin1")
    copied = world.client.cookies[SESSION_COOKIE]
    assert world.client.get("/api/patients").status_code == 200
    assert world.client.delete("/api/session", headers={"X-CSRF-Token": token}).status_code == 204
    world.client.cookies.set(SESSION_COOKIE, copied)
    assert world.client.get("/api/patients").status_code == 401
    # Logging in again starts a new, valid session.
    world.login("clin1")
    assert world.client.get("/api/patients").status_code == 200


def test_logout_ends_the_sessions_of_the_account_on_every_device(world: World) -> None:
    other = TestClient(world.client.app)
    r = other.post("/api/session", json={"username": "clin1", "password": "correct horse battery"})
    assert r.status_code == 200
    assert other.get("/api/patients").status_code == 200
    token = world.login("clin1")
    world.client.delete("/api/session", headers={"X-CSRF-Token": token})
    assert other.get("/api/patients").status_code == 401
    # Another account's session is untouched.
    world.login("clin2")
    assert world.client.get("/api/patients").status_code == 200


def test_a_cookie_copied_before_page_logout_is_refused_after_it(world: World) -> None:
    token = login_page(world, "clin1")
    copied = world.client.cookies[SESSION_COOKIE]
    r = world.client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    world.client.cookies.set(SESSION_COOKIE, copied)
    r = world.client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
