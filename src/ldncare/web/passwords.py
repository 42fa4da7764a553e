"""Password policy after NIST SP 800-63B: a length, and no password an attacker tries first.

No composition rules (upper case, digits, symbols) and no forced expiry, as 800-63B advises.
Refused, besides a length outside 10–256 characters:

- one character or a short group repeated (``aaaaaaaaaa``, ``abcabcabcabc``);
- a run of the alphabet, the digits or a keyboard row, either way (``1234567890``,
  ``qwertyuiop``);
- a password containing the username;
- one of the words in ``common_passwords.txt`` beside this module (context-specific words such
  as the product and the clinic, and some of the most used passwords), ignoring case and any
  digits or symbols around it (``Password123!``, ``ldncare2026``).

The shipped list is short: it is not a breached-password corpus (see docs/SECURITY.md).
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from ldncare.errors import InvalidInput

MIN_PASSWORD = 10
MAX_PASSWORD = 256
_RUNS = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "azertyuiop",
    "qwertzuiop",
    "1qaz2wsx3edc4rfv5tgb6yhn",
)
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@functools.cache
def common_passwords() -> frozenset[str]:
    text = (resources.files("ldncare.web") / "common_passwords.txt").read_text("utf-8")
    lines = (line.strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _repeats(password: str) -> bool:
    n = len(password)
    return any(n % size == 0 and password == password[:size] * (n // size) for size in range(1, 5))


def _is_run(password: str) -> bool:
    low = password.lower()
    return any(low in run or low in run[::-1] for run in _RUNS)


def check_password(password: str, *, username: str | None = None) -> None:
    """Refuse a password that is too short or long, or one attackers guess first."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password must be {MIN_PASSWORD}–{MAX_PASSWORD} characters long", field="password"
        )
    why = None
    if _repeats(password):
        why = "it repeats a few characters"
    elif _is_run(password):
        why = "it is a run of letters, digits or keys"
    elif username and username.strip().lower() in password.lower():
        why = "it contains the username"
    elif _AROUND.sub("", password.lower()) in common_passwords():
        why = "it is a commonly used password"
    if why:
        raise InvalidInput(
            f"this password is too easy to guess ({why}); a few unrelated words make a good one",
            field="password",
        )
