"""Web settings from the environment (prefix ``LDNCARE_``).

``LDNCARE_DATABASE_URL`` picks the database (default: the SQLite file of
:func:`ldncare.store.db.default_url`), ``LDNCARE_SECRET_KEY`` signs session cookies (required
outside demo mode), ``LDNCARE_DEMO`` loads demo data and relaxes production-only checks.
"""

from __future__ import annotations

import ipaddress
import secrets

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ldncare.errors import InvalidInput

#: Below this length a secret key is refused outside demo mode.
MIN_SECRET_LENGTH = 32


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDNCARE_", extra="ignore")

    database_url: str | None = None
    secret_key: str = ""
    demo: bool = False
    #: Send the session cookie only over HTTPS. Demo mode on plain http turns it off.
    cookie_secure: bool = True
    session_max_age_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 24 * 3600)
    #: Failed logins allowed per (IP, username) within the window before refusing.
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_window_seconds: int = Field(default=300, ge=1, le=86400)
    #: Largest request body accepted (bytes); larger ones get 413 before they are read.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    #: Reverse proxies (addresses or networks, comma-separated) whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` are believed. Default none: the client address is the TCP peer, so
    #: a forged header cannot dodge the login limit or falsify the audit log (uvicorn on its
    #: own trusts 127.0.0.1). See docs/SECURITY.md, "Behind a reverse proxy".
    trusted_proxies: str = ""
    #: Every clinician and admin account must use a second factor (TOTP): one not enrolled yet
    #: is taken to the enrolment page at its next login. Off: it is each user's choice.
    require_totp: bool = False
    #: Clinics (comma-separated ids) whose clinicians must use a second factor.
    totp_clinics: str = ""
    #: Single sign-on (OpenID Connect): the provider's issuer URL (https; http only on
    #: loopback), this app's client id and secret, the scopes asked, the claim holding the
    #: groups, and ``GROUP=admin`` / ``GROUP=clinician:CLINIC`` pairs (comma-separated). Off
    #: while the issuer is empty. ``oidc_redirect_url``: the callback URL registered at the
    #: provider (default: this server's ``/login/sso/callback`` as the request names it).
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid profile email"
    oidc_groups_claim: str = "groups"
    oidc_group_roles: str = ""
    oidc_redirect_url: str = ""

    @field_validator("oidc_group_roles")
    @classmethod
    def _group_roles_parse(cls, value: str) -> str:
        from ldncare.web.sso import parse_group_roles

        parse_group_roles(value)
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_is_https(cls, value: str) -> str:
        from urllib.parse import urlsplit

        if not value:
            return value
        parts = urlsplit(value)
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(f"LDNCARE_OIDC_ISSUER: {value!r} must be an https URL")
        return value

    def totp_required(self, role: str, clinic_id: str | None) -> bool:
        """Whether a (local) account of this role and clinic must use a second factor."""
        if role not in ("clinician", "admin"):
            return False
        clinics = {c.strip() for c in self.totp_clinics.split(",") if c.strip()}
        return self.require_totp or (clinic_id is not None and clinic_id in clinics)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        names = [part.strip() for part in value.split(",") if part.strip()]
        for name in names:
            try:
                ipaddress.ip_network(name, strict=False)
            except ValueError:
                raise ValueError(
                    f"LDNCARE_TRUSTED_PROXIES: {name!r} is not an IP address or network "
                    "(e.g. 10.0.0.5 or 10.0.0.0/24); name the proxies, '*' is not accepted"
                ) from None
        return ",".join(names)

    def proxy_options(self) -> dict[str, bool | str]:
        """uvicorn's ``proxy_headers`` / ``forwarded_allow_ips`` for these settings: forwarded
        headers are read only when proxies are named, and only from them."""
        return {
            "proxy_headers": bool(self.trusted_proxies),
            "forwarded_allow_ips": self.trusted_proxies,
        }

    def checked(self) -> WebSettings:
        """These settings, ready to serve: refuses weak production settings, fills demo gaps."""
        if self.oidc_issuer and not (
            self.oidc_client_id and self.oidc_client_secret and self.oidc_group_roles
        ):
            raise InvalidInput(
                "LDNCARE_OIDC_ISSUER is set: LDNCARE_OIDC_CLIENT_ID, LDNCARE_OIDC_CLIENT_SECRET "
                "and LDNCARE_OIDC_GROUP_ROLES must be set too",
                field="LDNCARE_OIDC_ISSUER",
            )
        if self.demo:
            key = self.secret_key or secrets.token_urlsafe(48)
            return self.model_copy(update={"secret_key": key})
        if len(self.secret_key) < MIN_SECRET_LENGTH:
            raise InvalidInput(
                f"LDNCARE_SECRET_KEY must be set to at least {MIN_SECRET_LENGTH} random "
                "characters outside demo mode (e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')",
                field="LDNCARE_SECRET_KEY",
            )
        return self
