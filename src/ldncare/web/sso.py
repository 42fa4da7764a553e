"""Single sign-on with the hospital's OpenID Connect provider (authorization code flow with
PKCE S256 and a nonce), using authlib as the client.

1. ``GET /login/sso``: a fresh ``state``, ``nonce`` and PKCE code verifier are kept in a short
   signed cookie (``ldncare_sso``, 10 minutes, path ``/login/sso``); the browser goes to the
   provider's authorization endpoint (from its discovery document).
2. ``GET /login/sso/callback``: the ``state`` must be the cookie's; the code is exchanged at the
   token endpoint (client_secret_basic, with the code verifier); the ID token's signature is
   checked against the provider's JWKS (the algorithms it announces; an unknown ``kid`` fetches
   the JWKS again once), then its ``iss`` (the configured issuer), ``aud`` (our client id),
   ``exp``/``iat`` (60 s leeway), ``nonce`` (the cookie's) and ``at_hash``.
3. The groups claim (``LDNCARE_OIDC_GROUPS_CLAIM``, default ``groups``) is mapped to a role by
   ``LDNCARE_OIDC_GROUP_ROLES`` (``group=admin`` or ``group=clinician:CLINIC``); a user in no
   mapped group is refused with a page saying so. The account is found by (issuer, subject)
   and its role brought up to date at every sign-in, or created under the provider's
   ``preferred_username``; it has no local password. Every sign-in, refusal, creation and role
   change is audited.

Local passwords remain for small clinics. ldncare's second factor (TOTP, and the settings
``LDNCARE_REQUIRE_TOTP`` / ``LDNCARE_TOTP_CLINICS`` that require it) is for local accounts:
a single sign-on is not asked for an ldncare code, and the hospital's provider is responsible
for the second factor of SSO sign-ins (docs/SECURITY.md says so).

A sign-in whose groups no longer give a role ends the open sessions of the account that
subject had (review L5); without a new sign-in, a session lasts its usual time
(``LDNCARE_SESSION_MAX_AGE_SECONDS``, 8 hours by default) after the groups are removed at
the provider.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import RedirectResponse, Response

from ldncare.errors import InvalidInput, LdncareError
from ldncare.store import accounts as store
from ldncare.web import deps
from ldncare.web.templating import page

if TYPE_CHECKING:  # authlib and joserfc are imported when single sign-on is used
    from authlib.integrations.httpx_client import OAuth2Client
    from joserfc.jwk import KeySet

SSO_COOKIE = "ldncare_sso"
#: Host names under which the callback URL may be taken from the request (no setting needed).
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
SSO_MAX_AGE = 600
LEEWAY_SECONDS = 60
router = APIRouter(include_in_schema=False)


class SsoRefused(Exception):
    """A sign-in that must not go through; ``message`` is shown to the user."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    groups_claim: str
    #: group -> (role, clinic or None)
    group_roles: dict[str, tuple[str, str | None]]
    redirect_url: str = ""
    timeout: float = 10.0


def parse_group_roles(text: str) -> dict[str, tuple[str, str | None]]:
    """``group=admin,group2=clinician:clinic-1`` -> {group: (role, clinic)}; bad entries are
    refused naming the entry."""
    roles: dict[str, tuple[str, str | None]] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        group, _, target = entry.partition("=")
        role, _, clinic = target.strip().partition(":")
        group, role, clinic = group.strip(), role.strip(), clinic.strip()
        if not group or role not in ("admin", "clinician"):
            raise ValueError(
                f"LDNCARE_OIDC_GROUP_ROLES: {entry!r} is not GROUP=admin or GROUP=clinician:CLINIC"
            )
        if role == "clinician" and not clinic:
            raise ValueError(f"LDNCARE_OIDC_GROUP_ROLES: {entry!r} names no clinic")
        if role == "admin" and clinic:
            raise ValueError(f"LDNCARE_OIDC_GROUP_ROLES: {entry!r}: an admin has no clinic")
        roles[group] = (role, clinic or None)
    return roles


def role_for(groups: object, mapping: dict[str, tuple[str, str | None]]) -> tuple[str, str | None]:
    """The role the user's groups give: admin if any group says so, else the clinician of the
    one clinic they map to. Refused: no mapped group, or clinics of several."""
    names = [groups] if isinstance(groups, str) else groups
    if not isinstance(names, list):
        names = []
    found = [mapping[g] for g in names if isinstance(g, str) and g in mapping]
    if not found:
        raise SsoRefused(
            "Your hospital account is not in a group allowed to use ldncare. Ask your "
            "administrator to add you to one of: " + ", ".join(sorted(mapping)) + ".",
            403,
        )
    if any(role == "admin" for role, _ in found):
        return "admin", None
    clinics = sorted({clinic for _, clinic in found if clinic})
    if len(clinics) > 1:
        raise SsoRefused(
            "Your hospital account is in the groups of several clinics ("
            + ", ".join(clinics)
            + "); ldncare needs one. Ask your administrator.",
            403,
        )
    return "clinician", clinics[0]


@dataclass(frozen=True)
class Identity:
    subject: str
    username: str
    groups: object


class OidcClient:
    """The provider's metadata and keys (fetched once, the keys again on an unknown ``kid``)."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _client(self, redirect_uri: str) -> OAuth2Client:
        from authlib.integrations.httpx_client import OAuth2Client

        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method="client_secret_basic",
            scope=self.config.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.config.timeout,
        )

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                with self._client("") as client:
                    data = client.request("GET", url, withhold_token=True).raise_for_status().json()
                if data.get("issuer") != self.config.issuer:
                    raise SsoRefused(
                        "The sign-in provider's discovery document names another issuer.", 502
                    )
                self._metadata = data
            return self._metadata

    def _keys(self, force: bool = False) -> KeySet:
        from joserfc.jwk import KeySet

        with self._lock:
            if self._jwks is None or force:
                uri = (self._metadata or {}).get("jwks_uri", "")
                with self._client("") as client:
                    self._jwks = (
                        client.request("GET", uri, withhold_token=True).raise_for_status().json()
                    )
            return KeySet.import_key_set(cast(Any, self._jwks))

    def begin(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """The provider's authorization URL and what the callback must find again."""
        meta = self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
            )
        return url, {"s": state, "n": nonce, "v": verifier, "r": redirect_uri}

    def finish(self, pending: Mapping[str, str], params: Mapping[str, str]) -> Identity:
        """Check the callback and the ID token; the signed-in person."""
        if params.get("error"):
            raise SsoRefused(f"The sign-in provider did not sign you in ({params['error']}).")
        if not hmac.compare_digest(params.get("state", ""), pending["s"]):
            raise SsoRefused(
                "This sign-in answer does not belong to the sign-in started in this browser "
                "(state). Start again from the login page."
            )
        code = params.get("code")
        if not code:
            raise SsoRefused("The sign-in provider sent no code. Start again.")
        from authlib.common.errors import AuthlibBaseError

        meta = self.metadata()
        try:
            with self._client(pending["r"]) as client:
                token = client.fetch_token(
                    meta["token_endpoint"],
                    code=code,
                    code_verifier=pending["v"],
                    grant_type="authorization_code",
                )
        except AuthlibBaseError as exc:
            raise SsoRefused(f"The sign-in provider refused the code ({exc.error}).") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRefused("The sign-in provider sent no ID token.")
        claims = self.validate(id_token, nonce=pending["n"], access_token=token.get("access_token"))
        username = str(claims.get("preferred_username") or claims.get("email") or "")
        return Identity(str(claims["sub"]), username, claims.get(self.config.groups_claim))

    def validate(
        self, id_token: str, *, nonce: str, access_token: str | None = None
    ) -> dict[str, Any]:
        from authlib.oidc.core import CodeIDToken
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jws import JWSRegistry

        meta = self.metadata()
        # The provider's keys are public keys (JWKS): never "none", never a shared-secret HMAC,
        # whatever the discovery document lists.
        listed = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in listed if isinstance(a, str) and a[:2] in _SIGNING_FAMILIES]
        registry = JWSRegistry(algorithms=algorithms or ["RS256"], strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, self._keys(), registry=registry)
            except JoseError as exc:
                if exc.error != "invalid_key_id":
                    raise
                decoded = jwt.decode(id_token, self._keys(force=True), registry=registry)
            self._check_audience(decoded.claims)
            params: dict[str, Any] = {"nonce": nonce, "client_id": self.config.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {"iss": {"essential": True, "values": [self.config.issuer]}},
                params,
            )
            claims.validate(leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as exc:
            raise SsoRefused(f"The sign-in provider's ID token was refused: {_why(exc)}.") from None
        return dict(claims)

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        """OpenID Connect Core 3.1.3.7: our client id among the audiences (a non-empty string
        or list), and ``azp``, when present or when there are several audiences, ours too."""
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        ours = self.config.client_id
        if not isinstance(audiences, list) or ours not in audiences:
            raise SsoRefused(
                "The sign-in provider's ID token was refused: it was issued for another "
                "application (aud), not this one."
            )
        azp = claims.get("azp")
        if (azp is not None or len(audiences) > 1) and azp != ours:
            raise SsoRefused(
                "The sign-in provider's ID token was refused: it names several audiences "
                "and was not issued to this application (azp)."
            )


#: JWS algorithm families of public-key signatures (RSA, RSA-PSS, ECDSA, EdDSA).
_SIGNING_FAMILIES = ("RS", "PS", "ES", "Ed")


def _why(exc: Exception) -> str:
    text = getattr(exc, "description", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")


# --- settings and state --------------------------------------------------------------------------


def client_from_settings(settings: Any) -> OidcClient | None:
    """The OIDC client for the app's settings, or None when single sign-on is not set up."""
    if not settings.oidc_issuer:
        return None
    return OidcClient(
        OidcConfig(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=settings.oidc_scopes,
            groups_claim=settings.oidc_groups_claim,
            group_roles=parse_group_roles(settings.oidc_group_roles),
            redirect_url=settings.oidc_redirect_url,
        )
    )


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.secret_key, salt="ldncare.sso")


def _oidc(request: Request) -> OidcClient:
    client: OidcClient | None = request.app.state.sso
    if client is None:
        from ldncare.errors import NotFound

        raise NotFound("single sign-on is not set up on this server")
    return client


def _refused(request: Request, message: str, status: int) -> Response:
    response = page(request, "sso_refused.html.j2", status_code=status, user=None, refusal=message)
    response.delete_cookie(SSO_COOKIE, path="/login/sso")
    return response


@router.get("/login/sso")
async def sso_start(request: Request) -> Response:
    client = _oidc(request)
    redirect_uri = client.config.redirect_url or str(request.url_for("sso_callback"))
    if not client.config.redirect_url and request.url.hostname not in _LOOPBACK_HOSTS:
        # Built from the Host header, which the caller chooses: only on this machine.
        return _refused(
            request,
            "Single sign-on is not finished being set up on this server: the administrator "
            "must set LDNCARE_OIDC_REDIRECT_URL (the callback URL registered at the provider).",
            500,
        )
    try:
        url, pending = await run_in_threadpool(client.begin, redirect_uri)
    except SsoRefused as exc:
        return _refused(request, exc.message, exc.status)
    except Exception:  # the provider is down or answers nonsense
        return _refused(request, "The hospital's sign-in provider cannot be reached.", 502)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        SSO_COOKIE,
        _serializer(request).dumps(pending),
        max_age=SSO_MAX_AGE,
        httponly=True,
        samesite="lax",  # the provider's redirect back is a top-level GET: the cookie comes
        secure=request.app.state.sessions.secure,
        path="/login/sso",
    )
    return response


@router.get("/login/sso/callback", name="sso_callback")
async def sso_callback(request: Request) -> Response:
    client = _oidc(request)
    engine = deps.engine(request)
    ip = request.client.host if request.client else "unknown"
    raw = request.cookies.get(SSO_COOKIE, "")
    try:
        pending = _serializer(request).loads(raw, max_age=SSO_MAX_AGE)
    except BadSignature:
        pending = None
    if not isinstance(pending, dict):
        return _refused(
            request,
            "This sign-in was not started in this browser, or took over 10 minutes. "
            "Start again from the login page.",
            400,
        )
    params = dict(request.query_params)
    identity: Identity | None = None
    try:
        identity = await run_in_threadpool(client.finish, pending, params)
        try:
            role, clinic = role_for(identity.groups, client.config.group_roles)
        except SsoRefused:
            # Removed from the groups (or put in several clinics'): an account made by an
            # earlier sign-in loses its open sessions now, not when they time out.
            await run_in_threadpool(
                store.end_sso_sessions,
                engine,
                issuer=client.config.issuer,
                subject=identity.subject,
                actor=f"sso:{client.config.issuer}",
            )
            raise
        user = await run_in_threadpool(
            store.sso_user,
            engine,
            issuer=client.config.issuer,
            subject=identity.subject,
            username=identity.username,
            role=role,
            clinic_id=clinic,
        )
    except SsoRefused as exc:
        detail = {"ip": ip, "sso": client.config.issuer, "why": exc.message[:200]}
        await run_in_threadpool(store.audit, engine, "web:sso", "denied", "login", None, detail)
        return _refused(request, exc.message, exc.status)
    except (InvalidInput, LdncareError) as exc:
        detail = {"ip": ip, "sso": client.config.issuer, "why": str(exc)[:200]}
        await run_in_threadpool(store.audit, engine, "web:sso", "denied", "login", None, detail)
        return _refused(request, str(exc), 403)
    if not user.active:
        detail = {"ip": ip, "sso": client.config.issuer, "why": "disabled"}
        await run_in_threadpool(
            store.audit, engine, f"web:{user.username}", "denied", "login", user.id, detail
        )
        return _refused(request, "This account is disabled in ldncare.", 403)
    await run_in_threadpool(
        store.audit,
        engine,
        f"web:{user.username}",
        "login",
        "user",
        user.id,
        {"ip": ip, "sso": client.config.issuer},
    )
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SSO_COOKIE, path="/login/sso")
    request.app.state.sessions.write(response, user.id, generation=user.session_generation)
    return response
