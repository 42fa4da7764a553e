"""The OAuth side of a SMART launch: discovery, the authorization request, the token.

The protocol is authlib's (``AsyncOAuth2Client``: PKCE S256, ``state``, the code exchange and
refresh); this module adds only what SMART App Launch 2.x asks on top of OAuth 2.0
(https://hl7.org/fhir/smart-app-launch/app-launch.html):

- discovery: ``{iss}/.well-known/smart-configuration`` names the authorization and token
  endpoints ("Retrieve .well-known/smart-configuration"; conformance.html). SMART 2 servers
  SHALL support PKCE with ``S256`` and list it in ``code_challenge_methods_supported``; a server
  that does not is refused rather than used without PKCE.
- the authorization request carries ``aud`` = the ``iss`` (so a token meant for one FHIR
  server is not asked from another) and, in an EHR launch, the opaque ``launch`` value.
- the token response carries the launch context: ``patient`` (the FHIR id of the patient in
  context), ``scope`` (what was actually granted) and, when asked, ``id_token`` and
  ``refresh_token``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ldncare.web.smart.errors import DiscoveryFailed, SessionExpired, SmartError, TokenRefused
from ldncare.web.smart.settings import SmartSettings, is_loopback, tls_context

# authlib's HTTP layer is httpx2 when installed, httpx otherwise (its own fallback): a transport
# failure of the token endpoint may come from either.
_TRANSPORT_ERRORS: tuple[type[Exception], ...]
try:
    import httpx2

    _TRANSPORT_ERRORS = (httpx.HTTPError, httpx2.HTTPError)
except ImportError:  # pragma: no cover - depends on the installation
    _TRANSPORT_ERRORS = (httpx.HTTPError,)

WELL_KNOWN = "/.well-known/smart-configuration"
#: OAuth errors the authorization server may send back to the redirect URI (RFC 6749 4.1.2.1).
CONSENT_ERRORS = {
    "access_denied": "The EHR or the user did not allow ldncare to read this record.",
    "invalid_scope": "The EHR does not grant the access ldncare asks for.",
    "unauthorized_client": "The EHR does not let ldncare use this kind of sign-in.",
}


@dataclass(frozen=True)
class SmartConfiguration:
    """What ldncare uses of an EHR's ``.well-known/smart-configuration``."""

    authorization_endpoint: str
    token_endpoint: str
    capabilities: frozenset[str]
    #: OpenID Connect issuer and its keys (SMART ``sso-openid-connect``): what the id_token is
    #: checked against. Without them the id_token is not used.
    issuer: str | None = None
    jwks_uri: str | None = None

    @property
    def v1_scopes_only(self) -> bool:
        """The server announces SMART 1 permissions and not SMART 2 (``.read``, not ``.rs``)."""
        return "permission-v1" in self.capabilities and "permission-v2" not in self.capabilities


def _endpoint(config: dict[str, Any], name: str, iss: str) -> str:
    value = config.get(name)
    if not isinstance(value, str) or not value:
        raise DiscoveryFailed(f"the SMART configuration of {iss} has no {name}")
    parts = urlsplit(value)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(value)):
        raise DiscoveryFailed(f"the {name} of {iss} is not an https URL: {value!r}")
    return value


async def _get_limited_json(
    url: str, settings: SmartSettings, what: str, error: type[SmartError]
) -> object:
    """The JSON body of ``GET url``, read up to ``max_response_bytes`` and refused past it
    while it arrives (a huge answer is not read whole before being refused)."""
    limit = settings.max_response_bytes
    body = bytearray()
    try:
        async with (
            httpx.AsyncClient(timeout=settings.timeout_seconds, verify=tls_context()) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise error(f"{what} ({url}) answered HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise error(f"{what} ({url}) answered with more than {limit} bytes")
    except httpx.HTTPError as exc:
        raise error(
            f"{what} ({url}) did not answer ({type(exc).__name__}); the EHR may be down, try "
            "again later"
        ) from None
    try:
        return json.loads(bytes(body))
    except ValueError:
        raise error(f"{what} ({url}) did not answer with JSON") from None


async def discover(iss: str, settings: SmartSettings) -> SmartConfiguration:
    """Read and check ``{iss}/.well-known/smart-configuration``."""
    url = iss.rstrip("/") + WELL_KNOWN
    config = await _get_limited_json(
        url, settings, "the EHR's SMART configuration", DiscoveryFailed
    )
    if not isinstance(config, dict):
        raise DiscoveryFailed(f"{url} did not answer with a JSON object")
    methods = config.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise DiscoveryFailed(
            f"{iss} does not announce PKCE with S256 (code_challenge_methods_supported), "
            "which SMART App Launch 2 requires; ldncare does not launch without it"
        )
    capabilities = config.get("capabilities")
    issuer = config.get("issuer")
    return SmartConfiguration(
        authorization_endpoint=_endpoint(config, "authorization_endpoint", iss),
        token_endpoint=_endpoint(config, "token_endpoint", iss),
        capabilities=frozenset(c for c in capabilities or () if isinstance(c, str)),
        issuer=issuer if isinstance(issuer, str) and issuer else None,
        jwks_uri=_endpoint(config, "jwks_uri", iss) if config.get("jwks_uri") else None,
    )


class DiscoveryCache:
    """Each EHR's checked SMART configuration, kept ``ttl`` seconds per issuer: a launch does
    not ask the EHR again each time (a flood of anonymous launches would otherwise make ldncare
    flood the EHR). Only a configuration that passed the checks is kept; concurrent launches
    on the same issuer wait for one request."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, SmartConfiguration]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, iss: str, settings: SmartSettings) -> SmartConfiguration:
        lock = self._locks.setdefault(iss, asyncio.Lock())
        async with lock:
            cached = self._entries.get(iss)
            if cached is not None and time.monotonic() < cached[0]:
                return cached[1]
            config = await discover(iss, settings)
            if self.ttl > 0:
                self._entries[iss] = (time.monotonic() + self.ttl, config)
            return config


def _client(settings: SmartSettings, scope: str | None = None) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=settings.client_id,
        client_secret=settings.client_secret or None,
        scope=scope,
        redirect_uri=settings.redirect_uri,
        code_challenge_method="S256",
        timeout=settings.timeout_seconds,
        verify=tls_context(),
    )


def new_verifier() -> str:
    """A PKCE code verifier: 48 random characters of the unreserved set (RFC 7636 4.1)."""
    return str(generate_token(48))


async def authorization_url(
    settings: SmartSettings,
    config: SmartConfiguration,
    *,
    iss: str,
    scope: str,
    code_verifier: str,
    launch: str | None,
) -> tuple[str, str]:
    """The URL to send the browser to, and the ``state`` it carries."""
    extra: dict[str, str] = {"aud": iss}
    if launch is not None:
        extra["launch"] = launch
    async with _client(settings, scope) as client:
        url, state = client.create_authorization_url(
            config.authorization_endpoint, code_verifier=code_verifier, **extra
        )
    return str(url), str(state)


async def exchange_code(
    settings: SmartSettings, token_endpoint: str, *, code: str, code_verifier: str
) -> dict[str, Any]:
    """The token response for ``code`` (authlib adds ``expires_at``)."""
    try:
        async with _client(settings) as client:
            token = await client.fetch_token(token_endpoint, code=code, code_verifier=code_verifier)
    except OAuthError as exc:
        raise TokenRefused(
            f"the EHR's token endpoint refused the sign-in ({exc.error}). The link may have "
            "expired or been used already: start again from the EHR."
        ) from None
    except _TRANSPORT_ERRORS as exc:
        raise TokenRefused(
            f"the EHR's token endpoint did not answer ({type(exc).__name__}); try again later"
        ) from None
    if not isinstance(token, dict) or not token.get("access_token"):
        raise TokenRefused("the EHR's token endpoint answered without an access token")
    return dict(token)


async def refresh(
    settings: SmartSettings, token_endpoint: str, token: dict[str, Any]
) -> dict[str, Any]:
    """A new token from the refresh token (SMART "Refresh access token" step); the old
    refresh token is kept when the server does not send a new one."""
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise SessionExpired(
            "the EHR's access has expired and it gave no refresh token: open ldncare from the "
            "EHR again"
        )
    try:
        async with _client(settings) as client:
            fresh = await client.refresh_token(token_endpoint, refresh_token=refresh_token)
    except (OAuthError, *_TRANSPORT_ERRORS):
        raise SessionExpired(
            "the EHR's access has expired and could not be renewed: open ldncare from the EHR again"
        ) from None
    merged = {**token, **dict(fresh)}
    merged.setdefault("refresh_token", refresh_token)
    return merged


#: Signature algorithms accepted on an id_token (OpenID Connect Core 3.1.3.7: RS256 is the
#: default; EHRs also sign with ES256/RS384/ES384). Never "none", never HMAC.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]


async def verify_id_token(
    id_token: str, *, issuer: str, jwks_uri: str, settings: SmartSettings
) -> dict[str, Any]:
    """The claims of the launch's ``id_token`` after checking its signature with the EHR's
    published keys, its ``iss`` (the OpenID issuer of the SMART configuration), its ``aud``
    (ldncare's client id) and ``exp`` (SMART App Launch, "openid fhirUser": the app uses the
    ``fhirUser`` claim only from a verified id_token)."""
    jwks = await _get_limited_json(jwks_uri, settings, "the EHR's signing keys", TokenRefused)
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (ValueError, JoseError, TypeError, KeyError, AttributeError):
        raise TokenRefused(f"the EHR's signing keys ({jwks_uri}) could not be read") from None
    try:
        token = jose_jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
        jose_jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": settings.client_id},
            exp={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise TokenRefused(
            f"the EHR's identity token did not verify ({type(exc).__name__}); ldncare did not "
            "use it. Open ldncare from the EHR again, or ask the EHR administrator."
        ) from None
    return dict(token.claims)
