"""Time-based one-time passwords (TOTP, RFC 6238, on HOTP, RFC 4226) and recovery codes.

Implemented here rather than with pyotp: the algorithm is twenty lines of the standard library
(HMAC, dynamic truncation), it is checked against the RFC's own test vectors (RFC 6238
Appendix B, RFC 4226 Appendix D), and the project gains no dependency for it.

Authenticator apps use the defaults: SHA-1, 6 digits, 30-second steps. A code is accepted for
the current step and one step either side (clock drift); the caller stores the step it accepted
and refuses that step and older ones afterwards, so a code cannot be replayed.

Recovery codes are ten random codes of 10 base32 characters (50 bits each) shown once; only a
SHA-256 of each is stored (a fast hash is enough for random codes of this strength; argon2 is
for passwords people choose).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
#: Steps either side of now that are still accepted (clock drift between phone and server).
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_CODE = re.compile(r"^\d{6}$")


def now() -> float:
    """The time codes are checked against (a function, so tests can move it)."""
    return time.time()


def new_secret() -> str:
    """A new shared secret: 160 random bits (RFC 4226's recommended length), base32."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def _key(secret_b32: str) -> bytes:
    clean = secret_b32.replace(" ", "").upper()
    return base64.b32decode(clean + "=" * (-len(clean) % 8))


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226: HMAC of the 8-byte counter, dynamically truncated to ``digits`` digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(
    key: bytes,
    unix_time: float,
    *,
    step: int = STEP_SECONDS,
    digits: int = DIGITS,
    digest: str = "sha1",
) -> str:
    """RFC 6238: HOTP of the number of ``step``-second steps since the Unix epoch."""
    return hotp(key, int(unix_time) // step, digits=digits, digest=digest)


def time_step(unix_time: float) -> int:
    return int(unix_time) // STEP_SECONDS


def looks_like_code(text: str) -> bool:
    """Six digits (spaces ignored): an authenticator code rather than a recovery code."""
    return bool(_CODE.match(text.replace(" ", "")))


def matching_step(secret_b32: str, code: str, unix_time: float) -> int | None:
    """The time step (now, or one either side) whose code is ``code``; None if none is."""
    code = code.replace(" ", "")
    if not _CODE.match(code):
        return None
    key = _key(secret_b32)
    now = time_step(unix_time)
    found = None
    for step in range(max(0, now - DRIFT_STEPS), now + DRIFT_STEPS + 1):
        # Every candidate is computed and compared in constant time.
        if hmac.compare_digest(hotp(key, step), code):
            found = step
    return found


def otpauth_uri(secret_b32: str, username: str, *, issuer: str = "ldncare") -> str:
    """The ``otpauth://totp/...`` URI authenticator apps read (Google Authenticator's format)."""
    label = quote(f"{issuer}:{username}", safe="")
    query = urlencode(
        {
            "secret": secret_b32,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """``count`` codes like ``k3j9x-2mpqa`` (10 base32 characters, 50 random bits)."""
    codes = []
    for _ in range(count):
        chars = "".join(secrets.choice(_B32) for _ in range(10))
        codes.append(f"{chars[:5]}-{chars[5:]}")
    return codes


def hash_recovery_code(code: str) -> str:
    """SHA-256 (hex) of the code as typed, ignoring case, spaces and dashes."""
    clean = re.sub(r"[\s\-]", "", code).lower()
    return hashlib.sha256(clean.encode("utf-8")).hexdigest()
