"""Issue #19 (Low): passwords per NIST SP 800-63B: a length and no password attackers try
first (``aaaaaaaaaa`` was accepted); no composition rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ldncare.errors import InvalidInput
from ldncare.web.passwords import check_password, common_passwords
from tests.web.conftest import World


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("aaaaaaaaaa", "repeats a few characters"),
        ("abcabcabcabc", "repeats a few characters"),
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
