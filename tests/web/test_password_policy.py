"""Issue #19 (Low): passwords per NIST SP 800-63B: a length and no password attackers try
first (``aaaaaaaaaa`` was accepted); no composition rules."""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ldncare.errors import InvalidInput
from ldncare.web.passwords import breached_passwords, check_password, common_passwords
from tests.web.conftest import World


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("aaaaaaaaaa", "repeats the same characters"),
        ("abcabcabcabc", "repeats the same characters"),
        ("1234567890", "run of letters, digits or keys"),
        ("0987654321", "run of letters, digits or keys"),
        ("qwertyuiop", "run of letters, digits or keys"),
        ("Password123!", "commonly used password"),
        ("ldncare2026", "commonly used password"),
        ("!!Naltrexone!!", "commonly used password"),
        ("dr.grey-is-back", "contains the username"),
    ],
)
def test_guessable_passwords_are_refused_with_the_reason(password: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as info:
        check_password(password, username="dr.grey")
    assert info.value.field == "password"


@pytest.mark.parametrize(
    "password", ["correct horse battery", "ldncare-demo", "tulip Orbit 7 canoe"]
)
def test_passphrases_without_composition_rules_are_accepted(password: str) -> None:
    check_password(password, username="dr.grey")


def test_the_shipped_list_is_read_and_lower_case() -> None:
    words = common_passwords()
    assert {"password", "ldncare", "letmein"} <= words
    assert all(w == w.lower() and not w.startswith("#") for w in words)


@settings(max_examples=200, deadline=None)
@given(unit=st.text(min_size=1, max_size=4), times=st.integers(min_value=3, max_value=60))
def test_any_short_group_repeated_is_refused(unit: str, times: int) -> None:
    password = unit * times
    if len(password) < 10 or len(password) > 256:
        return
    with pytest.raises(InvalidInput):
        check_password(password)


@pytest.mark.parametrize(
    "password", ["clinicianclinician", "passwordpassword", "ldncare ldncare", "Tulip-tulip-tulip"]
)
def test_a_word_typed_twice_is_refused_as_a_repeat(password: str) -> None:
    with pytest.raises(InvalidInput, match="repeats the same characters"):
        check_password(password)


@pytest.mark.parametrize(
    "password", ["12345678901234567890", "1234567890123", "qwertyuiopasdf", "mnbvcxzlkjhgfdsa"]
)
def test_digit_and_keyboard_runs_of_any_length_are_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match="too easy to guess"):
        check_password(password)


@settings(max_examples=200, deadline=None)
@given(unit=st.text(min_size=1, max_size=40), times=st.integers(min_value=2, max_value=60))
def test_any_group_of_any_size_repeated_is_refused(unit: str, times: int) -> None:
    password = unit * times
    if not 10 <= len(password) <= 256:
        return
    with pytest.raises(InvalidInput):
        check_password(password)


@settings(max_examples=200, deadline=None)
@given(
    cycle=st.sampled_from(["0123456789", "abcdefghijklmnopqrstuvwxyz"]),
    start=st.integers(min_value=0, max_value=25),
    length=st.integers(min_value=10, max_value=256),
    backwards=st.booleans(),
)
def test_any_run_of_digits_or_letters_going_round_is_refused(
    cycle: str, start: int, length: int, backwards: bool
) -> None:
    text = (cycle * (length // len(cycle) + 3))[start % len(cycle) :][:length]
    with pytest.raises(InvalidInput):
        check_password(text[::-1] if backwards else text)


@settings(max_examples=100, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=16),
    length=st.integers(min_value=10, max_value=26),
    backwards=st.booleans(),
)
def test_any_walk_along_the_keyboard_rows_is_refused(
    start: int, length: int, backwards: bool
) -> None:
    text = "qwertyuiopasdfghjklzxcvbnm"[start : start + length]
    if len(text) < 10:
        return
    with pytest.raises(InvalidInput):
        check_password(text[::-1] if backwards else text)


def test_user_add_refuses_aaaaaaaaaa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ldncare.cli.web_commands import register

    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    result = CliRunner().invoke(
        app, ["user", "add", "root2", "--role", "admin", "--password-stdin"], input="aaaaaaaaaa\n"
    )
    assert result.exit_code == 2
    assert "too easy to guess" in result.output


def test_reset_password_to_a_common_one_is_refused_and_the_old_one_kept(
    world: World,
) -> None:
    from ldncare.web.accounts import reset_password

    with pytest.raises(InvalidInput, match="commonly used password"):
        reset_password(world.engine, "clin1", "Welcome2026!", actor="test")
    world.login("clin1")


# --- the breached-password list (NIST SP 800-63B 5.1.1.2: "obtained from previous breach
# corpuses") -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["manchester1", "Butterfly1", "liverpool1987", "Liverpool1987!", "CHELSEA2000"],
)
def test_a_nurse_who_picks_a_leaked_password_is_told_it_was_leaked(password: str) -> None:
    with pytest.raises(InvalidInput, match="leaked in data breaches") as info:
        check_password(password, username="nurse.ward4")
    assert info.value.field == "password"


def test_the_breached_list_is_the_shipped_30000_lower_case_passwords() -> None:
    words = breached_passwords()
    assert len(words) == 30_000
    assert {"iloveyou", "trustno1", "liverpool", "password1234"} <= words
    assert all(w == w.lower() and w.strip() == w and not w.startswith("#") for w in words)
    # Compact and commented: the origin and the licence are in the file's header.
    raw = (resources.files("ldncare.web") / "breached_passwords.txt.gz").read_bytes()
    head = gzip.decompress(raw).decode()[:2000]
    assert "ten million" in head and "MIT" in head and "zxcvbn" in head
    assert len(raw) < 150_000


def test_strong_passphrases_are_not_on_the_breached_list() -> None:
    for password in ("correct horse battery", "tulip Orbit 7 canoe", "ferry lantern quartz"):
        check_password(password, username="nurse.ward4")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(w for w in breached_passwords() if 10 <= len(w) <= 20)))
def test_every_long_enough_breached_password_is_refused(password: str) -> None:
    """Safety invariant: no password of the shipped list is accepted, in any case."""
    for form in (password, password.upper(), password.capitalize()):
        with pytest.raises(InvalidInput):
            check_password(form, username="nurse.ward4")


# --- issue #21 (review L8): letter-for-digit swaps ---------------------------------------------


@pytest.mark.parametrize(
    "password", ["L1verp00l1987", "P@ssw0rd2026!", "1l0veyou123", "Ldnc4re2026!"]
)
def test_a_leaked_or_common_password_with_digits_for_letters_is_still_refused(
    password: str,
) -> None:
    with pytest.raises(InvalidInput, match="too easy to guess"):
        check_password(password)
