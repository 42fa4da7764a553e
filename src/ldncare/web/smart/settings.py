"""SMART on FHIR settings from the environment (prefix ``LDNCARE_SMART_``).

The launch endpoints exist only when ``LDNCARE_SMART_CLIENT_ID``, ``LDNCARE_SMART_REDIRECT_URI``
and ``LDNCARE_SMART_ALLOWED_ISSUERS`` are all set (:attr:`SmartSettings.enabled`): the demo and
any installation that was not registered in an EHR serve no /smart/ route at all.
"""

from __future__ import annotations

import functools
import ssl
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's default: certifi's roots) for every request to an EHR.

    Building one costs about 60 ms (the CA bundle is parsed); each httpx client builds its own
    unless given one, and a launch makes four or five clients. Shared, the launch up to the
    callback went from a median of 496 to 124 ms and the plan page from 187 to 67 ms against the
    test EHR (docs/SMART.md, "Measured").
    """
    return httpx.create_ssl_context()


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK_HOSTS


class SmartSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDNCARE_SMART_", extra="ignore")

    #: The client id the EHR gave ldncare when it was registered.
    client_id: str = ""
    #: Only for a confidential client registered with a shared secret; a public client sends
    #: none (PKCE protects its code).
    client_secret: str = ""
    #: ldncare's callback, exactly as registered in the EHR (``https://host/smart/callback``).
    redirect_uri: str = ""
    #: FHIR base URLs (``iss``) ldncare accepts a launch from, comma-separated, compared
    #: exactly after removing a trailing ``/``. An unlisted ``iss`` is refused before any request
    #: is sent to it, so a forged launch link cannot make ldncare talk to another server.
    allowed_issuers: str = ""
    #: Seconds for each request to the EHR (discovery, token, FHIR).
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: Bytes read from one EHR response at most.
    max_response_bytes: int = Field(default=10_000_000, ge=10_000, le=200_000_000)
    #: Pages of one FHIR search read at most (``next`` links on the same server).
    max_pages: int = Field(default=20, ge=1, le=1000)
    #: Seconds an EHR's checked ``.well-known/smart-configuration`` is reused (per issuer);
    #: 0 reads it at every launch.
    discovery_ttl_seconds: int = Field(default=300, ge=0, le=24 * 3600)
    #: Seconds a SMART session (and the tokens in it) lives on the server at most.
    session_max_age_seconds: int = Field(default=8 * 3600, ge=60, le=24 * 3600)

    @field_validator("allowed_issuers")
    @classmethod
    def _issuers_are_urls(cls, value: str) -> str:
        issuers = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        for iss in issuers:
            parts = urlsplit(iss)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError(f"LDNCARE_SMART_ALLOWED_ISSUERS: {iss!r} is not an http(s) URL")
            if parts.scheme == "http" and not is_loopback(iss):
                raise ValueError(
                    f"LDNCARE_SMART_ALLOWED_ISSUERS: {iss!r} must use https (plain http is "
                    "accepted for a server on this machine only)"
                )
        return ",".join(issuers)

    @property
    def issuers(self) -> tuple[str, ...]:
        return tuple(i for i in self.allowed_issuers.split(",") if i)

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.redirect_uri and self.issuers)

    @property
    def launch_url(self) -> str:
        """ldncare's launch URL, beside the redirect URI (``https://host/smart/launch``)."""
        return urljoin(self.redirect_uri, "launch")
