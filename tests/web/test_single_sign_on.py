"""Issue #19: clinicians sign in with the hospital's OpenID Connect provider.

The provider is real: authlib's server components on Flask (tests/support/oidc_provider.py),
serving discovery, JWKS, authorization (code + PKCE + nonce) and token endpoints on a real
socket. ldncare's client (web/sso.py, authlib) talks to it over HTTP; nothing of ldncare is
mocked. The browser is played by the test: ldncare's redirect is followed to the provider with
httpx, and the provider's redirect back is handed to ldncare's test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ldncare.store.models import AuditRow, UserRow
from ldncare.web.app import create_app
from ldncare.web.settings import WebSettings
from ldncare.web.sso import SsoRefused, parse_group_roles, role_for
from tests.support.oidc_provider import Person, Provider
from tests.web.conftest import PASSWORD, TODAY, World, seed_people

CLIENT_ID, CLIENT_SECRET = "ldncare-test", "a client secret for the tests only"
GROUP_ROLES = "ldn-clinic-1=clinician:clinic-1,ldn-clinic-2=clinician:clinic-2,ldn-admins=admin"


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider(CLIENT_ID, CLIENT_SECRET).start()
    p.redirect_uris = ["http://testserver/login/sso/callback"]
    yield p
    p.stop()


@pytest.fixture
def world(tmp_path: Path, provider: Provider) -> Iterator[World]:
    settings = WebSettings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        secret_key="k" * 48,
        cookie_secure=False,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_scopes="openid profile groups",
        oidc_group_roles=GROUP_ROLES,
        oidc_redirect_url="http://testserver/login/sso/callback",
    )
    app = create_app(settings, clock=lambda: TODAY)
    anna, bert, carl = seed_people(app.state.engine)
    with TestClient(app) as client:
        yield World(client, app.state.engine, anna, bert, carl)


def to_provider(world: World) -> str:
    """Click "Sign in with your hospital account": the provider's authorization URL."""
    r = world.client.get("/login/sso", follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def provider_answer(url: str) -> str:
    """The provider signs the user in and sends the browser back: ldncare's callback URL."""
    r = httpx.get(url, follow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return str(r.headers["location"])


def back_to_ldncare(world: World, callback: str) -> httpx.Response:
    parts = urlsplit(callback)
    assert parts.path == "/login/sso/callback"
    return world.client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def sign_in(world: World) -> httpx.Response:
    return back_to_ldncare(world, provider_answer(to_provider(world)))


def session(world: World) -> dict[str, object]:
    data: dict[str, object] = world.client.get("/api/session").json()
    return data


def audit(world: World, action: str) -> list[AuditRow]:
    with Session(world.engine) as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.action == action)).all())


def users(world: World) -> int:
    with Session(world.engine) as s:
        return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)


def test_dr_house_of_the_clinic_1_group_signs_in_and_is_made_a_clinician_of_clinic_1(
    world: World, provider: Provider
) -> None:
    provider.user = Person("sub-house-1", "dr.house", ["staff", "ldn-clinic-1"])
    authorize = to_provider(world)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"][0]
    assert query["client_id"] == [CLIENT_ID]
    r = back_to_ldncare(world, provider_answer(authorize))
    assert r.status_code == 303 and r.headers["location"] == "/"
    me = session(world)
    assert (me["username"], me["role"], me["clinic_id"]) == ("dr.house", "clinician", "clinic-1")
    assert world.client.get("/api/patients").status_code == 200
    created = [a.detail for a in audit(world, "create") if a.who.startswith("sso:")]
    assert created == [{"username": "dr.house", "role": "clinician", "sso": provider.issuer}]
    assert any(a.detail.get("sso") == provider.issuer for a in audit(world, "login") if a.detail)


def test_the_next_sign_in_finds_the_same_account_by_subject_and_follows_the_groups(
    world: World, provider: Provider
) -> None:
    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    assert sign_in(world).status_code == 303
    before = users(world)
    world.logout()
    # The provider renamed the user and moved them to the admins: same subject, same account.
    provider.user = Person("sub-house-1", "gregory.house", ["ldn-admins"])
    assert sign_in(world).status_code == 303
    assert users(world) == before
    me = session(world)
    assert (me["username"], me["role"], me["clinic_id"]) == ("dr.house", "admin", None)
    changes = [a.detail for a in audit(world, "set_role") if a.who.startswith("sso:")]
    assert changes and changes[-1]["after"] == {"role": "admin", "clinic": None}


def test_a_porter_outside_the_allowed_groups_is_refused_with_a_page_naming_them(
    world: World, provider: Provider
) -> None:
    provider.user = Person("sub-porter", "porter.1", ["porters", "staff"])
    before = users(world)
    r = sign_in(world)
    assert r.status_code == 403
    assert "not in a group allowed to use ldncare" in r.text
    assert "ldn-admins, ldn-clinic-1, ldn-clinic-2" in r.text
    assert session(world)["username"] is None
    assert users(world) == before
    assert [a.who for a in audit(world, "denied") if a.entity == "login"] == ["web:sso"]


def test_a_doctor_in_the_groups_of_two_clinics_is_refused(world: World, provider: Provider) -> None:
    provider.user = Person("sub-both", "dr.both", ["ldn-clinic-1", "ldn-clinic-2"])
    r = sign_in(world)
    assert r.status_code == 403 and "several clinics (clinic-1, clinic-2)" in r.text


def test_an_answer_carrying_another_state_is_refused(world: World, provider: Provider) -> None:
    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    callback = urlsplit(provider_answer(to_provider(world)))
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["state"] = "state-of-an-attackers-own-login"
    r = world.client.get(f"{callback.path}?{urlencode(params)}", follow_redirects=False)
    assert r.status_code == 400 and "(state)" in r.text
    assert session(world)["username"] is None


def test_an_answer_in_a_browser_that_did_not_start_the_sign_in_is_refused(
    world: World, provider: Provider
) -> None:
    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    callback = provider_answer(to_provider(world))
    world.client.cookies.clear()  # a victim's browser, handed the attacker's callback link
    r = back_to_ldncare(world, callback)
    assert r.status_code == 400 and "not started in this browser" in r.text
    assert session(world)["username"] is None


@pytest.mark.parametrize(
    ("flaw", "named"),
    [
        pytest.param("wrong_nonce", "nonce", id="another-logins-nonce"),
        pytest.param("expired_id_token", "exp", id="expired"),
    ],
)
def test_dr_house_with_a_flawed_id_token_is_refused_naming_the_flaw(
    world: World, provider: Provider, flaw: str, named: str
) -> None:
    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    setattr(provider, flaw, True)
    r = sign_in(world)
    assert r.status_code == 400 and "ID token was refused" in r.text and named in r.text
    assert session(world)["username"] is None


def test_a_code_used_once_cannot_sign_in_again(world: World, provider: Provider) -> None:
    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    authorize = to_provider(world)
    callback = provider_answer(authorize)
    cookie = world.client.cookies.get("ldncare_sso")
    assert back_to_ldncare(world, callback).status_code == 303
    world.logout()
    world.client.cookies.set("ldncare_sso", cookie or "", path="/login/sso")
    r = back_to_ldncare(world, callback)
    assert r.status_code == 400 and "refused the code" in r.text


def test_a_local_account_of_the_same_name_is_not_taken_over(
    world: World, provider: Provider
) -> None:
    provider.user = Person("sub-impostor", "clin1", ["ldn-admins"])
    r = sign_in(world)
    assert r.status_code == 403 and "already exists" in r.text
    world.login("clin1")  # the local account is untouched
    assert session(world)["role"] == "clinician"


def test_an_account_made_by_sso_has_no_local_password(world: World, provider: Provider) -> None:
    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    assert sign_in(world).status_code == 303
    world.logout()
    for password in ("!sso-only", PASSWORD, ""):
        body = {"username": "dr.house", "password": password or "x"}
        assert world.client.post("/api/session", json=body).status_code == 401


def test_a_disabled_sso_account_is_refused(world: World, provider: Provider) -> None:
    from ldncare.web.accounts import set_active

    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    assert sign_in(world).status_code == 303
    world.logout()
    set_active(world.engine, "dr.house", False, actor="test")
    r = sign_in(world)
    assert r.status_code == 403 and "disabled" in r.text


def test_the_login_page_offers_the_hospital_sign_in(world: World) -> None:
    assert 'href="/login/sso"' in world.client.get("/login").text


def test_without_an_issuer_there_is_no_single_sign_on(tmp_path: Path) -> None:
    app = create_app(
        WebSettings(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="k" * 48)
    )
    with TestClient(app) as client:
        assert client.get("/login/sso").status_code == 404
        assert 'href="/login/sso"' not in client.get("/login").text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"oidc_issuer": "http://idp.example.org"}, "must be an https URL"),
        ({"oidc_group_roles": "doctors=surgeon"}, "is not GROUP=admin or GROUP=clinician:CLINIC"),
        ({"oidc_group_roles": "doctors=clinician"}, "names no clinic"),
    ],
)
def test_bad_sso_settings_are_refused_naming_the_setting(
    options: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        WebSettings(secret_key="k" * 48, **options)  # type: ignore[arg-type]


GROUPS = st.lists(st.sampled_from(["ldn-clinic-1", "ldn-clinic-2", "ldn-admins", "other", ""]))


@given(GROUPS)
def test_the_role_follows_the_groups_and_never_exceeds_them(groups: list[str]) -> None:
    """Safety invariant: admin only through the admin group; a clinician only of a clinic whose
    group the user is in; no mapped group, no account."""
    mapping = parse_group_roles(GROUP_ROLES)
    try:
        role, clinic = role_for(groups, mapping)
    except SsoRefused:
        mapped = {g for g in groups if g in mapping}
        assert not mapped or ("ldn-admins" not in mapped and len(mapped) > 1)
        return
    if role == "admin":
        assert "ldn-admins" in groups and clinic is None
    else:
        assert "ldn-admins" not in groups and f"ldn-{clinic}" in groups


def test_the_accounts_page_shows_an_sso_account_as_signing_in_at_the_hospital(
    world: World, provider: Provider
) -> None:
    import re

    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    assert sign_in(world).status_code == 303
    world.logout()
    world.login("root")
    page = world.client.get("/admin/users").text
    assert re.search(r"dr.house</td>.*?<td>hospital</td>", page, flags=re.S)


# --- issue #21: the security review's findings on single sign-on -------------------------------


def test_dr_house_whose_entra_username_is_his_email_address_signs_in(
    world: World, provider: Provider
) -> None:
    """M6: Entra ID sends preferred_username user@hospital.org; it is his ldncare username."""
    provider.user = Person("sub-house-entra", "Gregory.House@Hospital.org", ["ldn-clinic-1"])
    r = sign_in(world)
    assert r.status_code == 303, r.text
    assert session(world)["username"] == "gregory.house@hospital.org"


@given(
    name=st.from_regex(
        r"[A-Za-z0-9][A-Za-z0-9_.+\-]{1,20}@[a-z0-9]{1,10}\.[a-z]{2,5}", fullmatch=True
    )
)
def test_every_plain_email_address_is_a_usable_sso_username(name: str) -> None:
    from ldncare.store.accounts import SSO_USERNAME_RE

    assert SSO_USERNAME_RE.match(name.lower())


def test_removing_dr_house_from_the_groups_ends_his_open_session_at_his_next_sign_in(
    world: World, provider: Provider
) -> None:
    """L5: the refused sign-in ends the sessions of the account, on every device."""
    provider.user = Person("sub-house-1", "dr.house", ["ldn-clinic-1"])
    assert sign_in(world).status_code == 303
    other_device = dict(world.client.cookies)
    provider.user = Person("sub-house-1", "dr.house", ["porters"])
    assert sign_in(world).status_code == 403
    world.client.cookies.clear()
    for name, value in other_device.items():
        world.client.cookies.set(name, value)
    assert session(world)["username"] is None
    assert world.client.get("/api/patients").status_code == 401


def test_without_a_registered_callback_url_single_sign_on_works_only_on_loopback(
    tmp_path: Path, provider: Provider
) -> None:
    """L2: the callback URL is not taken from a Host header an attacker chooses."""
    settings = WebSettings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        secret_key="k" * 48,
        cookie_secure=False,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_group_roles=GROUP_ROLES,
    )
    app = create_app(settings, clock=lambda: TODAY)
    with TestClient(app) as client:
        r = client.get("/login/sso", headers={"host": "evil.example"}, follow_redirects=False)
        assert r.status_code == 500 and "LDNCARE_OIDC_REDIRECT_URL" in r.text
        r = client.get("/login/sso", headers={"host": "localhost:8000"}, follow_redirects=False)
        assert r.status_code == 303
        redirect = parse_qs(urlsplit(r.headers["location"]).query)["redirect_uri"]
        assert redirect == ["http://localhost:8000/login/sso/callback"]


def _id_token_check(
    claims: dict[str, object], header: dict[str, str] | None = None, raw: str | None = None
) -> str:
    """What OidcClient.validate says of a token (review t7.py): "accepted" or the refusal."""
    import base64
    import json
    import time

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from ldncare.web.sso import OidcClient, OidcConfig

    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    client = OidcClient(OidcConfig("https://idp.example", "ours", "s", "openid", "groups", {}))
    client._metadata = {
        "issuer": "https://idp.example",
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
    }
    client._jwks = {"keys": [key.as_dict(private=False)]}
    now = int(time.time())
    base = {"iss": "https://idp.example", "sub": "x", "aud": "ours", "iat": now, "exp": now + 300}
    base["nonce"] = "n"

    def b64(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    token = (
        b64({"alg": "none"}) + "." + b64({**base, **claims}) + "."
        if raw == "none"
        else jwt.encode(header or {"alg": "RS256", "kid": "k1"}, {**base, **claims}, key)
    )
    try:
        client.validate(token, nonce="n")
    except SsoRefused as exc:
        return exc.message
    return "accepted"


def test_an_id_token_issued_for_another_app_is_refused_naming_the_audience() -> None:
    """L1: aud other-app with azp ours, and an empty aud, were accepted."""
    assert _id_token_check({}) == "accepted"
    assert "(aud)" in _id_token_check({"aud": "other-app", "azp": "ours"})
    assert "(aud)" in _id_token_check({"aud": [], "azp": "ours"})
    assert "(aud)" in _id_token_check({"aud": "other-app"})
    assert "(azp)" in _id_token_check({"aud": ["other-app", "ours"]})
    assert "(azp)" in _id_token_check({"aud": ["other-app", "ours"], "azp": "other-app"})
    assert _id_token_check({"aud": ["other-app", "ours"], "azp": "ours"}) == "accepted"


def test_an_unsigned_id_token_is_refused_even_when_discovery_lists_none() -> None:
    """L1: alg none was accepted whenever the discovery document listed it."""
    assert _id_token_check({}, raw="none") != "accepted"
