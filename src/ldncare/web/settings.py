"""Web settings from the environment (prefix ``LDNCARE_``).

``LDNCARE_DATABASE_URL`` picks the database (default: the SQLite file of
:func:`ldncare.store.db.default_url`), ``LDNCARE_SECRET_KEY`` signs session cookies (required
outside demo mode), ``LDNCARE_DEMO`` loads demo data and relaxes production-only checks.
"""

from __future__ import annotations

import secrets

from pydantic import Field
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

    def checked(self) -> WebSettings:
        """These settings, ready to serve: refuses weak production settings, fills demo gaps."""
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
