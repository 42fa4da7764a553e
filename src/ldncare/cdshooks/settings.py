"""Configuration of the CDS Hooks service, from the environment (prefix ``LDNCARE_CDS_``).

``LDNCARE_CDS_TRUSTED_ISSUERS`` is JSON mapping each trusted client ``iss`` to its keys:

- a JWKS URL (``"https://ehr.example.org/.well-known/jwks.json"``), fetched and cached;
- an inline JWKS (``{"keys": [...]}``);
- ``{"hs256_secret": "..."}``: a shared secret, meant for tests and local demos only.

``LDNCARE_CDS_DEMO=true`` turns JWT verification off (the server's ``--demo`` mode).
``LDNCARE_CDS_PUBLIC_URL`` is the externally visible base URL of the server (behind a proxy the
request URL differs from what the client signs as ``aud``); without it the request URL is used.
``LDNCARE_CDS_APP_URL`` is the base of the ldncare web app that card links point to.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CdsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDNCARE_CDS_", extra="ignore")

    trusted_issuers: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    demo: bool = False
    public_url: str | None = None
    app_url: str = "http://localhost:8000"
    #: Seconds to wait for the EHR's FHIR server (each query) and for a JWKS URL.
    fhir_timeout: float = 10.0
    #: Allowed clock skew when checking ``exp`` and ``iat``, in seconds.
    leeway: int = 60
    #: Longest accepted exp - iat, in seconds. CDS Hooks 1.0 (security: "This time MUST be no
    #: more than five minutes in the future") and SMART Backend Services set 5 minutes;
    #: CDS Hooks 2.0 no longer states a figure, so an EHR with longer tokens raises this.
    max_token_lifetime: int = 300
