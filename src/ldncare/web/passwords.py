"""Password policy after NIST SP 800-63B: a length, and no password an attacker tries first.

No composition rules (upper case, digits, symbols) and no forced expiry, as 800-63B advises.
Refused, besides a length outside 10–256 characters:

- one character or any group repeated, ignoring case, spaces and punctuation (``aaaaaaaaaa``,
  ``abcabcabcabc``, ``clinicianclinician``, ``ldncare ldncare``);
- a run of the alphabet, the digits or the keyboard, either way and of any length, going on
  past the end (``1234567890123``, ``12345678901234567890``, ``qwertyuiop``, ``qwertyuiopasdf``:
  every neighbouring pair of characters neighbours in the run);
- a password containing the username;
- one of the words in ``common_passwords.txt`` beside this module (context-specific words such
  as the product and the clinic, and some of the most used passwords), ignoring case and any
  digits or symbols around it (``Password123!``, ``ldncare2026``);
- a breached password: one of the 30,000 most frequent passwords of the "ten million passwords"
  leak compilation (``breached_passwords.txt.gz`` beside this module; origin and MIT licence in
  its header and in docs/SECURITY.md), as typed or without the digits or symbols around it
  (``iloveyou1``, ``Liverpool1987!``), and with common letter-for-digit swaps undone
  (``L1verp00l1987``, ``P@ssw0rd!``: 0→o, 1→i or l, 3→e, 4→a, 5→s, 7→t, @→a, $→s). Loaded
  once into a set: a lookup is O(1).
"""

from __future__ import annotations

import functools
import gzip
import re
from importlib import resources
from itertools import pairwise

from ldncare.errors import InvalidInput

MIN_PASSWORD = 10
MAX_PASSWORD = 256
#: Sequences an attacker walks; the last character of each leads back to the first where the
#: run cycles (digits, alphabet). The rows of a keyboard are also one run row after row.
_RUNS = (
    "abcdefghijklmnopqrstuvwxyza",
    "01234567890",
    "qwertyuiopasdfghjklzxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "qwertzuiopasdfghjklyxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)
#: (a, b) where b follows a in one of the runs.
_NEXT = frozenset((run[i], run[i + 1]) for run in _RUNS for i in range(len(run) - 1))
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\W_]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    text = (resources.files("ldncare.web") / "common_passwords.txt").read_text("utf-8")
    lines = (line.strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


@functools.cache
def breached_passwords() -> frozenset[str]:
    """The shipped breached-password list (lower case), read once."""
    raw = (resources.files("ldncare.web") / "breached_passwords.txt.gz").read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


#: Letter-for-digit swaps ("leet") undone before the list lookups; "1" is tried as i and as l.
_LEET = (
    str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}),
    str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}),
)


def _listed_forms(password: str) -> set[str]:
    """What the common and breached lists are looked up with: the password (lower case), without
    digits or symbols around it, and that with the swaps undone (``l1verp00l`` of
    ``L1verp00l1987``: the year around it is cut first, then the swaps inside undone)."""
    low = password.lower()
    bare = _AROUND.sub("", low)
    forms = {low, bare}
    for table in _LEET:
        forms.add(bare.translate(table))
        forms.add(_AROUND.sub("", low.translate(table)))
    return {f for f in forms if f}


def _breached(password: str) -> bool:
    return bool(_listed_forms(password) & breached_passwords())


def _forms(password: str) -> set[str]:
    """The password as typed (lower case), without spaces and punctuation, and without digits
    or symbols around it: what the repeat and run checks look at."""
    low = password.lower()
    bare = _SEPARATORS.sub("", low)
    return {f for f in (low, bare, _AROUND.sub("", bare)) if f}


def _is_repeat(text: str) -> bool:
    n = len(text)
    return n > 1 and any(
        n % size == 0 and text == text[:size] * (n // size) for size in range(1, n // 2 + 1)
    )


def _repeats(password: str) -> bool:
    return any(_is_repeat(form) for form in _forms(password))


def _is_walk(text: str) -> bool:
    pairs = list(pairwise(text))
    return bool(pairs) and (
        all(p in _NEXT for p in pairs) or all((b, a) in _NEXT for a, b in pairs)
    )


def _is_run(password: str) -> bool:
    low = password.lower()
    return _is_walk(low) or _is_walk(_SEPARATORS.sub("", low))


def check_password(password: str, *, username: str | None = None) -> None:
    """Refuse a password that is too short or long, or one attackers guess first."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password must be {MIN_PASSWORD}–{MAX_PASSWORD} characters long", field="password"
        )
    why = None
    if _repeats(password):
        why = "it repeats the same characters"
    elif _is_run(password):
        why = "it is a run of letters, digits or keys"
    elif username and username.strip().lower() in password.lower():
        why = "it contains the username"
    elif _listed_forms(password) & common_passwords():
        why = "it is a commonly used password"
    elif _breached(password):
        why = "it is on a list of passwords leaked in data breaches"
    if why:
        raise InvalidInput(
            f"this password is too easy to guess ({why}); a few unrelated words make a good one",
            field="password",
        )
