"""Verify the JWT a CDS client (the EHR) sends in ``Authorization: Bearer <jwt>``.

CDS Hooks 2.0: the token is signed by the client; its ``iss`` identifies the client, ``aud`` is
the URL of the service endpoint being called, and ``exp``, ``iat`` and ``jti`` are required.
Keys come only from configuration (a JWKS URL, an inline JWKS or, for tests, an HS256 secret):
a ``jku`` header in the token is never followed, because a token must not choose its own keys.
Replayed ``jti`` values are refused while the token they came with is still valid: by this
process's own cache and, when the service has a database, by the ``cds_seen_tokens`` table every
worker and machine shares (``claim``, see :mod:`ldncare.cdshooks.state`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import jwt

from ldncare.cdshooks.settings import CdsSettings

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


class JwtRejected(Exception):
    """The request's JWT is missing or invalid; the message says why (sent back with a 401)."""


class _WrongKey(JwtRejected):
    """The signature does not match this key (another key of the issuer may still fit)."""


class JwtVerifier:
    def __init__(
        self,
        settings: CdsSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        claim: Callable[[str, str, float], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        #: ``(iss, jti, expires_at) -> first use?`` in a store shared by every worker
        #: (blocking; run in a thread); None: this process's cache only.
        self.claim = claim
        self._jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._seen_jti: dict[str, float] = {}
        self._next_prune = 0.0

    async def _jwks(self, source: str | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(source, Mapping):
            if not isinstance(source.get("keys"), list):
                raise JwtRejected("the issuer's configured JWKS has no 'keys' list")
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

    async def _keys(self, header: Mapping[str, Any], source: str | Mapping[str, Any]) -> list[Any]:
        """The keys the token may be signed with: its ``kid``'s, of the type its ``alg`` needs
        (RSA for RS*, EC for ES*), or every such key of the issuer when it names none."""
        if isinstance(source, Mapping) and "hs256_secret" in source:
            if header.get("alg") != "HS256":
                raise JwtRejected("this issuer is configured for HS256 tokens only")
            return [str(source["hs256_secret"])]
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise JwtRejected(f"JWT algorithm {alg!r} is not accepted")
        kty = "RSA" if str(alg).startswith("RS") else "EC"
        keys = (await self._jwks(source)).get("keys", [])
        kid = header.get("kid")
        named = [k for k in keys if isinstance(k, Mapping) and (kid is None or k.get("kid") == kid)]
        if not named:
            raise JwtRejected(f"no key with kid {kid!r} in the issuer's JWKS")
        usable = [k for k in named if k.get("kty") == kty]
        if not usable:
            raise JwtRejected(f"the issuer has no {kty} key{f' {kid!r}' if kid else ''} for {alg}")
        out = []
        for k in usable:
            try:
                out.append(jwt.PyJWK.from_json(json.dumps(k), algorithm=str(alg)).key)
            except (jwt.PyJWTError, TypeError, ValueError) as exc:
                if kid is not None:
                    raise JwtRejected(f"the issuer's key {kid!r} cannot be used: {exc}") from None
        if not out:
            raise JwtRejected(f"none of the issuer's {kty} keys can be used for {alg}")
        return out

    def _decode(self, token: str, key: Any, alg: str, iss: str, audience: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=[audience.rstrip("/"), audience.rstrip("/") + "/"],
                issuer=iss,
                leeway=self.settings.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidAudienceError:
            raise JwtRejected(f"the JWT audience must be this service's URL, {audience}") from None
        except jwt.InvalidSignatureError as exc:
            raise _WrongKey(f"the JWT was refused: {exc}") from None
        except jwt.PyJWTError as exc:
            raise JwtRejected(f"the JWT was refused: {exc}") from None
        except (TypeError, ValueError) as exc:  # a key PyJWT cannot use with this algorithm
            raise JwtRejected(f"the JWT was refused: the key does not fit {alg}: {exc}") from None
        return claims

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
        keys = await self._keys(header, source)
        refused: list[JwtRejected] = []
        for key in keys:  # one key unless the token names no kid
            try:
                claims = self._decode(token, key, str(header.get("alg")), str(iss), audience)
                break
            except JwtRejected as exc:
                refused.append(exc)
        else:
            # The key that verified the signature says what is wrong (expired, audience...);
            # "signature verification failed" only when no key fits at all.
            fitting = [e for e in refused if not isinstance(e, _WrongKey)]
            raise (fitting or refused or [JwtRejected("the JWT was refused")])[0]
        now = time.time()
        if float(claims["iat"]) > now + self.settings.leeway:
            raise JwtRejected("the JWT was issued in the future (iat)")
        if float(claims["exp"]) - float(claims["iat"]) > self.settings.max_token_lifetime:
            raise JwtRejected(
                f"the JWT lives too long: exp - iat is over {self.settings.max_token_lifetime} s"
            )
        if not str(claims["jti"]).strip():
            # An empty id cannot tell one token from another: replay protection would rest on
            # the empty string (integrator review L1).
            raise JwtRejected("the JWT id (jti) is empty")
        self._forget_expired(now)
        jti = f"{iss}|{claims['jti']}"
        if jti in self._seen_jti:
            raise JwtRejected("the JWT id (jti) was already used")
        expires = float(claims["exp"]) + self.settings.leeway
        self._seen_jti[jti] = expires
        if self.claim is not None and not await asyncio.to_thread(
            self.claim, str(iss), str(claims["jti"]), expires
        ):
            raise JwtRejected("the JWT id (jti) was already used (seen by another worker)")
        return claims

    def _forget_expired(self, now: float) -> None:
        """Drop the jti of expired tokens, at most once a second: rebuilding the table on every
        call cost milliseconds per request once it held a few hundred thousand tokens."""
        if now < self._next_prune:
            return
        self._next_prune = now + 1.0
        self._seen_jti = {j: e for j, e in self._seen_jti.items() if e > now}
