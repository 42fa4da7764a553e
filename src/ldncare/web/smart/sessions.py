"""SMART sessions on the server: the pending launch and then the tokens, never in the browser.

The browser holds one HttpOnly cookie with a signed, opaque, random session id; the tokens
(access, refresh, id token), the PKCE verifier and ``state`` stay in this process's memory,
keyed by that id. SMART App Launch asks apps to keep tokens out of reach of the browser where
they can ("App Protection", https://hl7.org/fhir/smart-app-launch/app-launch.html#considerations-for-app-protection
-- a confidential or server-side app holds them on the server). A session ends when the
clinician ends it, when it is older than ``LDNCARE_SMART_SESSION_MAX_AGE_SECONDS``, or when the
process stops; nothing is written to disk.

A launch is *pending* from ``/smart/launch`` until its callback has traded the code for a token;
only then is it *established*. The two are held apart, each with its own cap: anyone can open
``/smart/launch?iss=<allowed EHR>`` without signing in, so a flood of launches can at most push
out other pending launches (each lives ``PENDING_MAX_AGE`` seconds), never an open session with
the EHR -- establishing one needs a real sign-in at the EHR.

One process only: with ``ldncare serve --workers N`` a launch must return to the same worker
(docs/SMART.md).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ldncare.core.patient import Patient

SMART_COOKIE = "ldncare_smart"
#: Established sessions held at most; past it the oldest are dropped (memory stays bounded).
MAX_SESSIONS = 10_000
#: Pending launches held at most, apart from the established sessions; past it the oldest
#: pending launch is dropped.
MAX_PENDING = 2_000
#: Seconds a launch may wait for its callback (the clinician signs in at the EHR meanwhile).
PENDING_MAX_AGE = 600


@dataclass
class SmartSession:
    """One launch: what the callback checks, then what the FHIR reads use."""

    iss: str
    authorization_endpoint: str
    token_endpoint: str
    standalone: bool
    scope: str
    state: str
    code_verifier: str
    created: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: OpenID issuer and keys of the EHR, to check the id_token against (None: not used).
    oidc_issuer: str | None = None
    jwks_uri: str | None = None
    #: The user at the EHR (``fhirUser`` of the verified id_token), e.g. Practitioner/123.
    fhir_user: str | None = None
    #: The token response (access_token, refresh_token, expires_at, scope, patient, ...).
    token: dict[str, Any] | None = None
    #: Where the launch context came from: the EHR's ``patient`` and ``fhirUser``.
    patient_id: str | None = None
    #: The topic of the CDS card the launch came from (its ``appContext``), if any.
    card_topic: str | None = None
    #: The record as last shown, and when it was read (what "follow" stores).
    patient: Patient | None = None
    retrieved_at: datetime | None = None
    #: ldncare's patient record number once the clinician followed the patient.
    followed: int | None = None

    @property
    def granted_scope(self) -> str:
        return str((self.token or {}).get("scope") or "")


class SmartSessions:
    """The in-memory store plus the cookie that names a session."""

    def __init__(self, secret_key: str, *, max_age: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="ldncare.smart")
        self._sessions: dict[str, SmartSession] = {}
        self._pending: dict[str, SmartSession] = {}
        self._lock = threading.Lock()
        self.max_age = max_age
        self.secure = secure

    def start(self, response: Response, session: SmartSession) -> str:
        """Hold ``session`` as a pending launch under a new id and set the cookie naming it."""
        sid = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for old in [k for k, s in self._pending.items() if now - s.created > PENDING_MAX_AGE]:
                del self._pending[old]
            while len(self._pending) >= MAX_PENDING:
                del self._pending[next(iter(self._pending))]
            self._pending[sid] = session
        response.set_cookie(
            SMART_COOKIE,
            self._serializer.dumps(sid),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/smart",
        )
        return sid

    def _sid(self, request: Request) -> str | None:
        raw = request.cookies.get(SMART_COOKIE)
        if not raw:
            return None
        try:
            sid = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:
            return None
        return sid if isinstance(sid, str) else None

    def get(self, request: Request) -> SmartSession | None:
        """The browser's session, established or still pending."""
        sid = self._sid(request)
        if sid is None:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None:
                if now - session.created > self.max_age:
                    del self._sessions[sid]
                    return None
                return session
            session = self._pending.get(sid)
            if session is not None and now - session.created > PENDING_MAX_AGE:
                del self._pending[sid]
                return None
            return session

    def establish(self, request: Request) -> None:
        """The browser's pending launch got its token: hold it among the open sessions."""
        sid = self._sid(request)
        if sid is None:
            return
        now = time.monotonic()
        with self._lock:
            session = self._pending.pop(sid, None)
            if session is None:
                return
            for old in [k for k, s in self._sessions.items() if now - s.created > self.max_age]:
                del self._sessions[old]
            while len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            self._sessions[sid] = session

    def end(self, request: Request, response: Response) -> None:
        """Forget the session (its tokens with it) and clear the cookie."""
        sid = self._sid(request)
        if sid is not None:
            with self._lock:
                self._sessions.pop(sid, None)
                self._pending.pop(sid, None)
        response.delete_cookie(SMART_COOKIE, path="/smart", secure=self.secure, httponly=True)

    def held(self) -> int:
        """Established and pending sessions held."""
        with self._lock:
            return len(self._sessions) + len(self._pending)

    def held_established(self) -> int:
        with self._lock:
            return len(self._sessions)
