"""Accounts, passwords, sessions and who may see which patient.

- Passwords are hashed with argon2id (argon2-cffi defaults); a login for an unknown user still
  spends one verification so that timing does not reveal which usernames exist.
- A session is a signed, timestamped cookie (itsdangerous) holding the user id and the session's
  CSRF token; it is HttpOnly, SameSite=Lax and Secure unless the demo runs on plain http.
- Failed logins are counted per (client IP, username); past the limit the login is refused
  for the rest of the window, even with the right password. Second-factor codes are also
  counted per account alone (:data:`SECOND_FACTOR_KEY`), whatever the address: a stolen
  password and many addresses still give only ``max_failures`` code guesses a window.
- Roles: ``clinician`` sees the patients of their clinic, ``patient`` their own record,
  ``admin`` everything. A refused patient looks exactly like a missing one (404).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine
from starlette.responses import Response

from ldncare.errors import InvalidInput, NotFound
from ldncare.store import accounts as store
from ldncare.store.accounts import STAFF_ROLES
from ldncare.store.models import ROLES, PatientRow, UserRow
from ldncare.store.repository import ambiguous
from ldncare.web import totp
from ldncare.web.passwords import check_password

SESSION_COOKIE = "ldncare_session"
#: The half-done login's cookie (password right, second factor next) and its lifetime.
PENDING_COOKIE = "ldncare_2fa"
PENDING_MAX_AGE = 300
#: The limiter's "address" under which second-factor failures are counted per account alone.
SECOND_FACTOR_KEY = "*second-factor*"
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{2,63}$")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, used to equalise timing")


class NotAuthenticated(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""


class Forbidden(Exception):
    """Logged in, but the role does not allow this action (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    clinic_id: str | None
    patient_id: int | None
    csrf: str

    @property
    def actor(self) -> str:
        """What the audit log records as ``who``."""
        return f"web:{self.username}"

    @property
    def is_clinician(self) -> bool:
        return self.role in ("clinician", "admin")


# --- passwords and users -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    engine: Engine,
    username: str,
    password: str,
    *,
    role: str,
    clinic_id: str | None = None,
    patient: int | str | None = None,
    actor: str,
) -> UserRow:
    """Create an account. A patient account is tied to one stored patient record."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "a username is 3–64 characters: lower-case letters, digits, '.', '_' or '-'",
            field="username",
        )
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    if role == "clinician" and not clinic_id:
        raise InvalidInput("a clinician account needs a clinic", field="clinic")
    if role == "patient" and patient is None:
        raise InvalidInput("a patient account needs the patient's id", field="patient")
    if role != "patient" and patient is not None:
        raise InvalidInput("only a patient account is tied to a patient record", field="patient")
    check_password(password, username=username)
    return store.insert_user(
        engine,
        username=username,
        password_hash=hash_password(password),
        role=role,
        clinic_id=clinic_id,
        patient=patient,
        actor=actor,
    )


def _spend_one_verification(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY_HASH, password)


def authenticate(engine: Engine, username: str, password: str) -> UserRow | None:
    """The account if ``password`` is its password. Every refusal spends one argon2
    verification, so that the time taken does not tell an unknown, disabled or single-sign-on
    account (no local password) from a wrong password."""
    user = store.user_by_name(engine, username)
    if user is None or not user.active or not user.password_hash.startswith("$argon2"):
        _spend_one_verification(password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return user


def end_sessions(engine: Engine, user_id: int, *, actor: str) -> None:
    """End every session of the account, on every device: the next generation starts."""
    store.end_sessions(engine, user_id, actor=actor)


@dataclass(frozen=True)
class LoginAttempt:
    """The outcome of one login: the account, or why not (``retry_after`` when rate-limited).

    ``second_factor`` is ``"code"`` when the password was right and the account's TOTP code is
    asked next, ``"enrol"`` when the account must first set up a second factor; in both cases
    the login is not complete (no session yet) and the attempt stays counted by the limiter."""

    user: UserRow | None
    retry_after: int | None = None
    second_factor: str | None = None
    #: Why a half-done login cannot go on at all ("disabled", "expired"), not a wrong code.
    refused: str | None = None


def _no_totp_required(role: str, clinic_id: str | None) -> bool:
    return False


def attempt_login(
    engine: Engine,
    limiter: Limiter,
    ip: str,
    username: str,
    password: str,
    *,
    totp_required: Callable[[str, str | None], bool] = _no_totp_required,
) -> LoginAttempt:
    """One login attempt, for the page and the API alike: the rate limit per (IP, username),
    the password check, and an audit row either way.

    The attempt is counted as a failure before the password is checked (atomically with the
    limit check, :meth:`LoginLimiter.begin`), and the count is cleared when the login succeeds:
    concurrent guesses on several workers cannot slip past the limit together. A staff account
    with a second factor (or required to enrol one) keeps the attempt counted until its code
    is right: codes are limited by the same count as passwords."""
    who = f"web:{username[:64]}"
    wait = limiter.begin(ip, username)
    if wait:
        _audit(engine, who, "denied", "login", None, {"ip": ip})
        return LoginAttempt(None, wait)
    found = authenticate(engine, username, password)
    if found is None:
        _audit(engine, who, "denied", "login", None, {"ip": ip})
        return LoginAttempt(None)
    if found.role in STAFF_ROLES and found.totp_enabled:
        _audit(engine, f"web:{found.username}", "password_ok", "user", found.id, {"ip": ip})
        return LoginAttempt(found, second_factor="code")
    if found.role in STAFF_ROLES and totp_required(found.role, found.clinic_id):
        _audit(engine, f"web:{found.username}", "password_ok", "user", found.id, {"ip": ip})
        return LoginAttempt(found, second_factor="enrol")
    limiter.succeed(ip, username)
    _audit(engine, f"web:{found.username}", "login", "user", found.id, {"ip": ip})
    return LoginAttempt(found)


def _pending_user(engine: Engine, user_id: int, generation: int) -> UserRow | None:
    """The account a half-done login (password right, code next) is for, if still valid."""
    row = store.user_by_id(engine, user_id)
    if row is None or not row.active or row.session_generation != generation:
        return None
    return row


def _why_pending_ended(engine: Engine, user_id: int) -> str:
    row = store.user_by_id(engine, user_id)
    return "disabled" if row is not None and not row.active else "expired"


def _begin_code(limiter: Limiter, ip: str, username: str, *, ip_counted: bool = False) -> int:
    """Count one second-factor attempt: per (address, username) like a password (unless the
    caller's password check in the same request counted it already), and per account alone.
    The seconds to wait if either is over the limit, else 0."""
    wait = 0 if ip_counted else limiter.begin(ip, username)
    return wait or limiter.begin(SECOND_FACTOR_KEY, username)


def _code_succeeded(limiter: Limiter, ip: str, username: str) -> None:
    limiter.succeed(ip, username)
    limiter.succeed(SECOND_FACTOR_KEY, username)


def attempt_second_factor(
    engine: Engine,
    limiter: Limiter,
    ip: str,
    user_id: int,
    generation: int,
    code: str,
    *,
    now: float | None = None,
    ip_counted: bool = False,
) -> LoginAttempt:
    """The second step of a login: an authenticator code (each time step accepted once) or
    one of the account's recovery codes (each usable once), under the same rate limit and a
    per-account one. ``ip_counted``: the password check of this same request (the API's
    one-call login) already counted the attempt for this address: it costs one, not two."""
    user = _pending_user(engine, user_id, generation)
    if user is None:
        return LoginAttempt(None, refused=_why_pending_ended(engine, user_id))
    if not user.totp_enabled or not user.totp_secret:
        return LoginAttempt(None, refused="expired")
    who = f"web:{user.username}"
    wait = _begin_code(limiter, ip, user.username, ip_counted=ip_counted)
    if wait:
        _audit(engine, who, "denied", "login", user.id, {"ip": ip, "second_factor": "limited"})
        return LoginAttempt(None, wait)
    code = code.strip()[:64]
    method = "totp" if totp.looks_like_code(code) else "recovery_code"
    if method == "totp":
        step = totp.matching_step(user.totp_secret, code, totp.now() if now is None else now)
        ok = step is not None and store.accept_totp_step(engine, user.id, step)
    else:
        left = store.use_recovery_code(engine, user.id, totp.hash_recovery_code(code), actor=who)
        ok = left is not None
    if not ok:
        _audit(engine, who, "denied", "login", user.id, {"ip": ip, "second_factor": method})
        return LoginAttempt(None)
    _code_succeeded(limiter, ip, user.username)
    _audit(engine, who, "login", "user", user.id, {"ip": ip, "second_factor": method})
    return LoginAttempt(user)


def enrolment_key(secret: str) -> str:
    """Names one enrolment's secret on its page (a hidden field) without revealing it: the
    confirmation must come from the page that showed this very secret."""
    return hashlib.sha256(b"ldncare.enrolment:" + secret.encode("ascii")).hexdigest()[:32]


def _may_enrol(engine: Engine, user_id: int, generation: int | None) -> UserRow | None:
    row = store.user_by_id(engine, user_id)
    if row is None or not row.active or row.role not in STAFF_ROLES or row.totp_enabled:
        return None
    if row.password_hash == store.NO_LOCAL_PASSWORD:  # single sign-on: the provider's factor
        return None
    if generation is not None and row.session_generation != generation:
        return None
    return row


def begin_enrolment(engine: Engine, user_id: int, generation: int | None) -> tuple[str, str] | None:
    """(username, base32 secret) for a staff account starting to set up its second factor:
    always a new secret, which replaces any earlier one not confirmed (a key shown to someone
    else before, e.g. to whoever had only the password, is never handed on). None if the account
    cannot enrol (gone, disabled, a patient or single-sign-on account, logged out since, or
    already enrolled)."""
    row = _may_enrol(engine, user_id, generation)
    if row is None:
        return None
    secret = totp.new_secret()
    store.start_totp(engine, user_id, secret, actor=f"web:{row.username}")
    return row.username, secret


def enrolment_in_progress(
    engine: Engine, user_id: int, generation: int | None, key: str
) -> tuple[str, str] | None:
    """The secret of the enrolment whose page carried ``key`` (to show it again after a wrong
    code); None if the account cannot enrol or another enrolment has started since."""
    row = _may_enrol(engine, user_id, generation)
    if row is None or not row.totp_secret:
        return None
    if not hmac.compare_digest(enrolment_key(row.totp_secret), key):
        return None
    return row.username, row.totp_secret


@dataclass(frozen=True)
class Enrolment:
    """A confirmed second factor: the account and its recovery codes (shown once)."""

    user: UserRow | None
    recovery_codes: list[str]
    retry_after: int | None = None


def confirm_enrolment(
    engine: Engine,
    limiter: Limiter,
    ip: str,
    user_id: int,
    generation: int | None,
    code: str,
    *,
    key: str,
    now: float | None = None,
) -> Enrolment:
    """Turn the second factor on with its first code; ten recovery codes are made (only their
    hashes are stored). ``key`` is the :func:`enrolment_key` of the page the code was typed on:
    a secret started elsewhere since is not confirmed. Wrong codes count against the login
    limit and the per-account second-factor limit. ``generation`` is that of the half-done
    login (None: a logged-in user, whose session was checked already)."""
    if generation is None:
        row = store.user_by_id(engine, user_id)
        generation = row.session_generation if row else -1
    user = _pending_user(engine, user_id, generation)
    if user is None or user.totp_enabled or not user.totp_secret:
        return Enrolment(None, [])
    if not hmac.compare_digest(enrolment_key(user.totp_secret), key):
        return Enrolment(None, [])
    who = f"web:{user.username}"
    wait = _begin_code(limiter, ip, user.username)
    if wait:
        _audit(engine, who, "denied", "totp_confirm", user.id, {"ip": ip})
        return Enrolment(None, [], wait)
    step = totp.matching_step(user.totp_secret, code, totp.now() if now is None else now)
    codes = totp.new_recovery_codes()
    hashes = [totp.hash_recovery_code(c) for c in codes]
    if step is None or not store.confirm_totp(engine, user.id, step, hashes, actor=who):
        _audit(engine, who, "denied", "totp_confirm", user.id, {"ip": ip})
        return Enrolment(None, [])
    _code_succeeded(limiter, ip, user.username)
    return Enrolment(user, codes)


def check_password_again(
    engine: Engine, limiter: Limiter, ip: str, user: CurrentUser, password: str
) -> int | None:
    """A logged-in user types the password again before a security change (setting up the
    second factor): a stolen session cookie alone cannot. None when right; else the seconds to
    wait (rate-limited like a login), 0 for a wrong password."""
    wait = limiter.begin(ip, user.username)
    if wait:
        _audit(engine, user.actor, "denied", "reauth", user.id, {"ip": ip})
        return wait
    if authenticate(engine, user.username, password) is None:
        _audit(engine, user.actor, "denied", "reauth", user.id, {"ip": ip})
        return 0
    limiter.succeed(ip, user.username)
    return None


def reset_totp(engine: Engine, username: str, *, actor: str) -> bool:
    """Remove an account's second factor (lost phone); its sessions end. Audited."""
    return store.reset_totp(engine, username, actor=actor)


def _audit(
    engine: Engine, who: str, action: str, entity: str, entity_id: int | None, detail: Any
) -> None:
    store.audit(engine, who, action, entity, entity_id, detail)


def count_users(engine: Engine) -> int:
    return store.count_users(engine)


# --- login rate limiting -------------------------------------------------------------------------


class Limiter(Protocol):
    """What a login limiter offers: this in-memory one, or the database's
    (:class:`ldncare.store.login_limits.DbLoginLimiter`, chosen with PostgreSQL)."""

    max_failures: int
    window: int

    def blocked(self, ip: str, username: str) -> int: ...
    def fail(self, ip: str, username: str) -> None: ...
    def begin(self, ip: str, username: str) -> int: ...
    def succeed(self, ip: str, username: str) -> None: ...
    def keys_held(self) -> int: ...


class LoginLimiter:
    """Failed logins per (IP, username) in a sliding window. One process, one worker: the web
    app uses it with SQLite (one server); with PostgreSQL it uses the database's limiter, shared
    by every worker and machine.

    Only keys with a failure inside the window are held: a probe that is not blocked leaves
    nothing behind, and expired keys are swept, so guessing many usernames cannot grow memory
    beyond the failures of one window.
    """

    def __init__(self, max_failures: int, window_seconds: int) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        """The failures of ``key`` inside the window; an emptied entry is dropped."""
        q = self._failures.get(key)
        if q is None:
            return None
        while q and now - q[0] > self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def _sweep(self, now: float) -> None:
        # At most once a window: each sweep is one pass over the keys.
        if now - self._swept < self.window:
            return
        self._swept = now
        for key in [k for k, q in self._failures.items() if now - q[-1] > self.window]:
            del self._failures[key]

    def blocked(self, ip: str, username: str) -> int:
        """Seconds until the next attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            q = self._recent((ip, username.strip().lower()), now)
            if q is None or len(q) < self.max_failures:
                return 0
            return max(1, int(self.window - (now - q[0])) + 1)

    def fail(self, ip: str, username: str) -> None:
        now = time.monotonic()
        key = (ip, username.strip().lower())
        with self._lock:
            self._sweep(now)
            q = self._recent(key, now)
            if q is None:
                q = self._failures[key] = deque()
            q.append(now)

    def begin(self, ip: str, username: str) -> int:
        """One attempt, atomically: the seconds to wait if the key is blocked, else 0 and the
        attempt is counted as a failure until :meth:`succeed` clears the key."""
        now = time.monotonic()
        key = (ip, username.strip().lower())
        with self._lock:
            q = self._recent(key, now)
            if q is not None and len(q) >= self.max_failures:
                return max(1, int(self.window - (now - q[0])) + 1)
            self._sweep(now)
            if q is None:
                q = self._failures[key] = deque()
            q.append(now)
            return 0

    def succeed(self, ip: str, username: str) -> None:
        with self._lock:
            self._failures.pop((ip, username.strip().lower()), None)

    def keys_held(self) -> int:
        """How many (IP, username) keys are held (for tests and monitoring)."""
        with self._lock:
            return len(self._failures)


# --- sessions ------------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    """Signed session cookies: ``{"u": user id or None, "c": csrf token, "g": the account's
    session generation at login}`` (see :func:`end_sessions`)."""

    def __init__(self, secret_key: str, *, max_age: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="ldncare.session")
        self._pending = URLSafeTimedSerializer(secret_key, salt="ldncare.second-factor")
        self.max_age = max_age
        self.secure = secure

    def read(self, request: Request) -> dict[str, Any] | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        return data

    def write(
        self,
        response: Response,
        user_id: int | None,
        token: str | None = None,
        *,
        generation: int = 0,
    ) -> str:
        """Start a new session (a fresh CSRF token unless given) and return its token."""
        token = token or new_token()
        value = self._serializer.dumps({"u": user_id, "c": token, "g": generation})
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )
        return token

    def clear(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure, httponly=True)

    # A login half done: the password was right, the second factor comes next. A cookie of its
    # own, signed with another salt (it can never pass for a session) and short-lived.

    def write_pending(self, response: Response, user_id: int, generation: int, stage: str) -> None:
        value = self._pending.dumps({"u": user_id, "g": generation, "s": stage})
        response.set_cookie(
            PENDING_COOKIE,
            value,
            max_age=PENDING_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/login",
        )

    def read_pending(self, request: Request) -> dict[str, Any] | None:
        raw = request.cookies.get(PENDING_COOKIE)
        if not raw:
            return None
        try:
            data = self._pending.loads(raw, max_age=PENDING_MAX_AGE)
        except BadSignature:
            return None
        ok = isinstance(data, dict) and isinstance(data.get("u"), int)
        return data if ok and isinstance(data.get("g"), int) else None

    def clear_pending(self, response: Response) -> None:
        response.delete_cookie(PENDING_COOKIE, path="/login", secure=self.secure, httponly=True)


def load_user(engine: Engine, session: dict[str, Any] | None) -> CurrentUser | None:
    if not session or not isinstance(session.get("u"), int):
        return None
    row = store.user_by_id(engine, session["u"])
    # A cookie from before the account's last logout is over (cookies made before
    # generations existed carry none: generation 0).
    if row is None or not row.active or session.get("g", 0) != row.session_generation:
        return None
    return CurrentUser(
        id=row.id,
        username=row.username,
        role=row.role,
        clinic_id=row.clinic_id,
        patient_id=row.patient_id,
        csrf=str(session["c"]),
    )


# --- who may see which patient -------------------------------------------------------------------


def may_see(user: CurrentUser, patient: PatientRow) -> bool:
    if user.role == "admin":
        return True
    if user.role == "clinician":
        return user.clinic_id is not None and patient.clinic_id == user.clinic_id
    return user.patient_id == patient.id


def authorize_patient(engine: Engine, user: CurrentUser, ref: int | str) -> PatientRow:
    """The patient ``ref`` if ``user`` may see it; otherwise NotFound (as if it did not exist).

    A refusal is written to the audit log.
    """
    visible = store.visible_patients(
        engine, ref, lambda row: may_see(user, row), actor=user.actor, role=user.role
    )
    if len(visible) > 1:
        raise ambiguous(ref)
    if not visible:
        raise NotFound(f"no patient {str(ref)!r} among the records you can see")
    return visible[0]


def require_clinician(user: CurrentUser) -> None:
    if not user.is_clinician:
        raise Forbidden("this needs a clinician account")


def require_admin(user: CurrentUser) -> None:
    if user.role != "admin":
        raise Forbidden("this needs an administrator account")
