"""Verify the JWT a CDS client (the EHR) sends in ``Authorization: Bearer <jwt>``.

CDS Hooks 2.0: the token is signed by the client; its ``iss`` identifies the client, ``aud`` is
the URL of the service endpoint being called, and ``exp``, ``iat`` and ``jti`` are required.
Keys come only from configuration (a JWKS URL, an inline JWKS or, for tests, an HS256 secret):
a ``jku`` header in the token is never followed, because a token must not choose its own keys.
Replayed ``jti`` values are refused while the token they came with is still valid.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import jwt

from ldncare.cdshooks.settings import CdsSettings

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


class JwtRejected(Exception):
    """The request's JWT is missing or invalid; the message says why (sent back with a 401)."""


class JwtVerifier:
    def __init__(
        self, settings: CdsSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._seen_jti: dict[str, float] = {}

    async def _jwks(self, source: str | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(source, Mapping):
            return dict(source)
        cached = self._jwks_cache.get(source)
        if cached and cached[0] > time.time():
            return cached[1]
        try:
            async with httpx.AsyncClient(
                transport=self.transport, timeout=self.settings.fhir_timeout
            ) as client:
                response = await client.get(source)
                response.raise_for_status()
                jwks = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JwtRejected(f"could not fetch the issuer's JWKS from {source}: {exc}") from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise JwtRejected(f"the JWKS at {source} has no 'keys' list")
        self._jwks_cache[source] = (time.time() + 300, jwks)
        return jwks

    async def _key(self, header: Mapping[str, Any], source: str | Mapping[str, Any]) -> Any:
        if isinstance(source, Mapping) and "hs256_secret" in source:
            if header.get("alg") != "HS256":
                raise JwtRejected("this issuer is configured for HS256 tokens only")
            return str(source["hs256_secret"])
        if header.get("alg") not in ASYMMETRIC_ALGORITHMS:
            raise JwtRejected(f"JWT algorithm {header.get('alg')!r} is not accepted")
        keys = (await self._jwks(source)).get("keys", [])
        kid = header.get("kid")
        candidates = [k for k in keys if kid is None or k.get("kid") == kid]
        if not candidates:
            raise JwtRejected(f"no key with kid {kid!r} in the issuer's JWKS")
        try:
            return jwt.PyJWK.from_json(json.dumps(candidates[0])).key
        except jwt.PyJWTError as exc:
            raise JwtRejected(f"the issuer's key {kid!r} cannot be used: {exc}") from None

    async def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The verified claims, or :class:`JwtRejected` with the reason."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise JwtRejected("an Authorization: Bearer <JWT> header is required")
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise JwtRejected(f"the bearer token is not a JWT: {exc}") from None
        iss = unverified.get("iss")
        source = self.settings.trusted_issuers.get(str(iss))
        if source is None:
            raise JwtRejected(f"issuer {iss!r} is not trusted by this CDS service")
        key = await self._key(header, source)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[str(header.get("alg"))],
                audience=[audience.rstrip("/"), audience.rstrip("/") + "/"],
                issuer=str(iss),
                leeway=self.settings.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidAudienceError:
            raise JwtRejected(f"the JWT audience must be this service's URL, {audience}") from None
        except jwt.PyJWTError as exc:
            raise JwtRejected(f"the JWT was refused: {exc}") from None
        now = time.time()
        if float(claims["iat"]) > now + self.settings.leeway:
            raise JwtRejected("the JWT was issued in the future (iat)")
        if float(claims["exp"]) - float(claims["iat"]) > self.settings.max_token_lifetime:
            raise JwtRejected("the JWT lives too long (exp - iat)")
        self._seen_jti = {j: e for j, e in self._seen_jti.items() if e > now}
        jti = f"{iss}|{claims['jti']}"
        if jti in self._seen_jti:
            raise JwtRejected("the JWT id (jti) was already used")
        self._seen_jti[jti] = float(claims["exp"]) + self.settings.leeway
        return claims
