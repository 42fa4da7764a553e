"""Configuration of the CDS Hooks service, from the environment (prefix ``LDNCARE_CDS_``).

``LDNCARE_CDS_TRUSTED_ISSUERS`` is JSON mapping each trusted client ``iss`` to its keys:

- a JWKS URL (``"https://ehr.example.org/.well-known/jwks.json"``), fetched and cached;
- an inline JWKS (``{"keys": [...]}``);
- ``{"hs256_secret": "..."}``: a shared secret, meant for tests and local demos only.

``LDNCARE_CDS_DEMO=true`` turns JWT verification off (the server's ``--demo`` mode).
``LDNCARE_CDS_PUBLIC_URL`` is the externally visible base URL of the server (behind a proxy the
request URL differs from what the client signs as ``aud``); without it the request URL is used.
Write it as integrators do, with or without the ``/cds-services`` base: ``https://cds.example.org``,
``https://cds.example.org/cds-services`` and ``https://cds.example.org/cds-services/`` all mean
the same (the ``aud`` of a call is ``{base}/cds-services/{service id}``).

The FHIR fallback (templates the EHR did not prefetch) is bounded: all queries run at once and
must finish within ``LDNCARE_CDS_FHIR_DEADLINE`` seconds (default 3: inside the 5 s budget for
a Da Vinci CRD response that issue #18 cites -- the figure was not re-checked here); at the
deadline the unfinished queries are cancelled and the call answers 412 Precondition Failed
naming each prefetch key it could not read. Each response is
read up to ``LDNCARE_CDS_FHIR_MAX_BYTES`` and a search follows at most
``LDNCARE_CDS_FHIR_MAX_PAGES`` pages. In demo mode (no JWT, so anyone may call) only the
servers in ``LDNCARE_CDS_DEMO_FHIR_SERVERS`` are fetched from: JSON list of base URLs, or
``"loopback"`` for this machine (the default); ``[]`` fetches from none.
``LDNCARE_CDS_APP_URL`` is the base of the ldncare web app that card links point to (the
card's ``source.url`` and "Open the LDN plan"); unset, it is the server of
``LDNCARE_CDS_PUBLIC_URL`` (the web app and CDS Hooks are one server), and only with neither set
``http://localhost:8000`` (a warning is logged outside demo mode).
``LDNCARE_CDS_SMART_LAUNCH_URL`` (set by the web app when SMART is configured) adds a SMART
link to every card on a patient (docs/SMART.md) whose request's ``fhirServer`` is one of
``LDNCARE_CDS_SMART_ISSUERS`` (JSON list; the web app sets it from
``LDNCARE_SMART_ALLOWED_ISSUERS``): a launch from any other EHR would be refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Card links with neither LDNCARE_CDS_APP_URL nor LDNCARE_CDS_PUBLIC_URL set (a local demo).
LOCAL_APP_URL = "http://localhost:8000"


class CdsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDNCARE_CDS_", extra="ignore")

    trusted_issuers: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    demo: bool = False
    public_url: str | None = None
    #: Base of the web app card links point to; None: the server of ``public_url``.
    app_url: str | None = None
    #: ldncare's SMART launch URL: cards on a patient carry a ``smart`` link to it (issue #21).
    smart_launch_url: str | None = None
    #: FHIR servers (SMART ``iss``) the launch accepts: only their cards get the ``smart`` link.
    smart_issuers: list[str] = Field(default_factory=list)
    #: Seconds to wait for a JWKS URL.
    fhir_timeout: float = 10.0
    #: Seconds for all FHIR fallback queries of one call together (pages included).
    fhir_deadline: float = Field(default=3.0, gt=0, le=30)
    #: Bytes read at most from one FHIR response.
    fhir_max_bytes: int = Field(default=5_000_000, gt=0)
    #: Pages followed at most for one fallback search (the first included).
    fhir_max_pages: int = Field(default=5, ge=1)
    #: ``fhirServer`` values demo mode fetches from: base URLs, or "loopback".
    demo_fhir_servers: list[str] = Field(default_factory=lambda: ["loopback"])
    #: Allowed clock skew when checking ``exp`` and ``iat``, in seconds.
    leeway: int = 60
    #: Longest accepted exp - iat, in seconds. CDS Hooks 1.0 (security: "This time MUST be no
    #: more than five minutes in the future") and SMART Backend Services set 5 minutes;
    #: CDS Hooks 2.0 no longer states a figure, so an EHR with longer tokens raises this.
    max_token_lifetime: int = 300
    #: Days the cards shown and their feedback are kept in the database (the outcomes page).
    outcomes_keep_days: int = Field(default=400, ge=1)

    def smart_link_for(self, fhir_server: object) -> bool:
        """Whether a card for a request from ``fhir_server`` gets the ``smart`` launch link."""
        if not self.smart_launch_url or not isinstance(fhir_server, str):
            return False
        allowed = {i.strip().rstrip("/") for i in self.smart_issuers}
        return fhir_server.strip().rstrip("/") in allowed

    def links_base(self) -> str:
        """The web app base card links use: ``app_url``, else the server of ``public_url``
        (without a ``/cds-services`` suffix), else :data:`LOCAL_APP_URL`."""
        if self.app_url and self.app_url.strip():
            return self.app_url.strip().rstrip("/")
        if self.public_url and self.public_url.strip():
            return self.public_url.strip().rstrip("/").removesuffix("/cds-services").rstrip("/")
        return LOCAL_APP_URL
