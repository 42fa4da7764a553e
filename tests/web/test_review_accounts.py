"""Issue #21, the security review of the accounts work: each finding as the case it describes.

H1 a key shown to whoever had only the password is never handed to the next enrolment; M1 code
guesses are capped per account whatever the address; L6 setting up the second factor asks for
the password again; L7 a wrong code over the API costs one attempt, not two; L8 a disabled
account's half-done login says so; L4 a local login to a single-sign-on account spends a full
password verification."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.store import accounts as store
from ldncare.web import auth
from ldncare.web.auth import LoginLimiter, attempt_login, attempt_second_factor
from tests.web.conftest import PASSWORD, World
from tests.web.test_two_step_login import (
    Clock,
    _code,
    _csrf,
    _key,
    _secret,
    enrol_from_account_page,
    make_world,
    page_login,
    send_code,
)
from tests.web.test_two_step_login import clock as clock  # the fixture


@pytest.fixture
def clinic2_requires(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, totp_clinics="clinic-2")


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def test_a_key_copied_by_an_intruder_with_only_dr_clin2s_password_is_not_the_one_she_enrols(
    clinic2_requires: World, clock: Clock
) -> None:
    """H1 (t1.py): the intruder opens the enrolment page and leaves; Dr clin2 logs in later and
    is shown a new key; the intruder's copy then opens nothing, on the page or the API."""
    world = clinic2_requires
    assert page_login(world, "clin2") == "/login/enrol"
    intruder_secret = _secret(world.client.get("/login/enrol").text)
    world.client.cookies.clear()

    assert page_login(world, "clin2") == "/login/enrol"
    page = world.client.get("/login/enrol")
    secret = _secret(page.text)
    assert secret != intruder_secret
    form = {"csrf_token": _csrf(page.text), "key": _key(page.text)}
    r = world.client.post("/login/enrol", data={**form, "code": _code(secret, clock.now)})
    assert r.status_code == 200, r.text
    world.client.cookies.clear()

    clock.now += 30
    body = {"username": "clin2", "password": PASSWORD, "totp": _code(intruder_secret, clock.now)}
    assert world.client.post("/api/session", json=body).status_code == 401
    body["totp"] = _code(secret, clock.now)
    assert world.client.post("/api/session", json=body).status_code == 200


def test_an_enrolment_page_replaced_by_a_later_one_does_not_confirm_the_later_key(
    clinic2_requires: World, clock: Clock
) -> None:
    """H1: a second enrolment started meanwhile (another tab, or an intruder) makes the first
    page stale: its code is not checked against a key its user never saw."""
    world = clinic2_requires
    assert page_login(world, "clin2") == "/login/enrol"
    first = world.client.get("/login/enrol")
    second = world.client.get("/login/enrol")
    second_secret = _secret(second.text)
    form = {"csrf_token": _csrf(first.text), "key": _key(first.text)}
    r = world.client.post("/login/enrol", data={**form, "code": _code(second_secret, clock.now)})
    assert r.status_code == 409 and "started again" in r.text
    assert world.client.get("/api/patients").status_code == 401


def test_a_stolen_session_cookie_cannot_start_setting_up_the_second_factor(
    plain: World, clock: Clock
) -> None:
    """L6 and H1 (t17.py): the account page asks for the password again, and each start shows
    a new key."""
    token = plain.login("clin1")
    r = plain.client.post("/account/totp/start", data={"csrf_token": token})
    assert r.status_code == 401 and "not your password" in r.text
    r = plain.client.post("/account/totp/start", data={"csrf_token": token, "password": "nope"})
    assert r.status_code == 401
    form = {"csrf_token": token, "password": PASSWORD}
    first = _secret(plain.client.post("/account/totp/start", data=form).text)
    second = _secret(plain.client.post("/account/totp/start", data=form).text)
    assert first != second


def test_guessing_codes_from_many_addresses_is_capped_per_account(
    plain: World, clock: Clock
) -> None:
    """M1 (t4.py): the password from one address, then codes from six others: only
    ``max_failures`` wrong codes are checked in the window, then even the right code waits."""
    secret, _ = enrol_from_account_page(plain, "clin1", clock)
    clock.now += 30
    limiter = LoginLimiter(max_failures=5, window_seconds=900)
    first = attempt_login(plain.engine, limiter, "127.0.0.5", "clin1", PASSWORD)
    assert first.second_factor == "code" and first.user is not None
    user = first.user
    outcomes = []
    for i in range(6, 12):
        for guess in ("000001", "000002", "000003"):
            attempt = attempt_second_factor(
                plain.engine, limiter, f"127.0.0.{i}", user.id, user.session_generation, guess
            )
            outcomes.append("limited" if attempt.retry_after else "checked")
    assert outcomes.count("checked") == 5
    right = attempt_second_factor(
        plain.engine,
        limiter,
        "127.0.0.99",
        user.id,
        user.session_generation,
        _code(secret, clock.now),
    )
    assert right.user is None and right.retry_after


def test_a_wrong_code_over_the_api_costs_one_attempt_not_two(plain: World, clock: Clock) -> None:
    """L7: with 4 allowed (this world's limit), three wrong codes in one-call API logins leave
    the fourth attempt to go through with the right code."""
    secret, _ = enrol_from_account_page(plain, "clin1", clock)
    clock.now += 30
    for wrong in ("000001", "000002", "000003"):
        body = {"username": "clin1", "password": PASSWORD, "totp": wrong}
        assert plain.client.post("/api/session", json=body).status_code == 401
    body = {"username": "clin1", "password": PASSWORD, "totp": _code(secret, clock.now)}
    assert plain.client.post("/api/session", json=body).status_code == 200


def test_dr_clin1_disabled_between_password_and_code_is_told_the_account_is_disabled(
    plain: World, clock: Clock
) -> None:
    """L8: not "Wrong or already used code", which sends her guessing."""
    secret, _ = enrol_from_account_page(plain, "clin1", clock)
    clock.now += 30
    assert page_login(plain, "clin1") == "/login/code"
    store.set_active(plain.engine, "clin1", False, actor="cli:admin")
    page = plain.client.get("/login/code")
    r = plain.client.post(
        "/login/code", data={"csrf_token": _csrf(page.text), "code": _code(secret, clock.now)}
    )
    assert r.status_code == 403 and "disabled" in r.text and "Wrong" not in r.text
    assert send_code(plain, _code(secret, clock.now)) == 303  # the half-done login is gone
    assert plain.client.get("/api/patients").status_code == 401


def test_a_local_login_to_a_single_sign_on_account_spends_a_full_verification(
    plain: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L4 (t13.py): its stored "hash" is no argon2 hash; the refusal must still cost one
    argon2 verification, or its speed tells the account exists."""
    store.sso_user(
        plain.engine,
        issuer="https://idp.example",
        subject="s-1",
        username="dr.sso",
        role="clinician",
        clinic_id="clinic-1",
    )
    verified: list[str] = []
    real = auth._hasher

    class Counting:
        def verify(self, hash_: str, password: str) -> bool:
            verified.append(hash_)
            return real.verify(hash_, password)

    monkeypatch.setattr(auth, "_hasher", Counting())
    assert auth.authenticate(plain.engine, "dr.sso", "whatever it is") is None
    assert verified == [auth._DUMMY_HASH]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(addresses=st.lists(st.integers(min_value=1, max_value=250), min_size=1, max_size=40))
def test_no_spread_of_addresses_gets_more_code_checks_than_the_account_limit(
    plain: World, addresses: list[int]
) -> None:
    """Safety invariant (M1): however the guesses are spread over addresses, at most
    ``max_failures`` wrong codes are checked for one account in a window."""
    limiter = LoginLimiter(max_failures=5, window_seconds=900)
    checked = 0
    for a in addresses:
        wait = auth._begin_code(limiter, f"10.0.0.{a}", "clin1")
        checked += not wait
    assert checked <= 5
