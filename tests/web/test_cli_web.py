"""``ldncare user add`` and ``ldncare serve --help`` through a typer app built here."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ldncare.cli.web_commands import register
from ldncare.store.db import open_engine
from ldncare.web.auth import authenticate
from tests.web.conftest import _store


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LDNCARE_DATABASE_URL", url)
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test root"""

    register(app)
    return app, url


def test_user_add_clinician_with_password_on_stdin(cli: tuple[typer.Typer, str]) -> None:
    app, url = cli
    r = CliRunner().invoke(
        app,
        ["user", "add", "dr.who", "--role", "clinician", "--clinic", "c1", "--password-stdin"],
        input="a long enough password\n",
    )
    assert r.exit_code == 0, r.output
    assert "user dr.who (clinician) created" in r.output
    user = authenticate(open_engine(url), "dr.who", "a long enough password")
    assert user is not None and user.clinic_id == "c1"


def test_user_add_patient_is_tied_to_the_record(cli: tuple[typer.Typer, str]) -> None:
    app, url = cli
    from datetime import date

    pid = _store(open_engine(url), "pat", "c1", date(2026, 1, 1))
    r = CliRunner().invoke(
        app,
        ["user", "add", "pat", "--role", "patient", "--patient", "pat", "--password-stdin"],
        input="another long password\n",
    )
    assert r.exit_code == 0, r.output
    user = authenticate(open_engine(url), "pat", "another long password")
    assert user is not None and user.patient_id == pid and user.clinic_id == "c1"


def test_user_add_refuses_bad_input(cli: tuple[typer.Typer, str]) -> None:
    app, _ = cli
    runner = CliRunner()
    r = runner.invoke(
        app, ["user", "add", "nurse", "--role", "clinician", "--password-stdin"], input="x" * 12
    )
    assert r.exit_code == 2 and "needs a clinic" in r.output
    r = runner.invoke(
        app, ["user", "add", "pat1", "--role", "patient", "--patient", "nobody",
              "--password-stdin"], input="long enough pass\n",
    )  # fmt: skip
    assert r.exit_code == 3
    r = runner.invoke(
        app, ["user", "add", "short", "--role", "admin", "--password-stdin"], input="short\n"
    )
    assert r.exit_code == 2 and "password" in r.output


def test_serve_help_mentions_demo(cli: tuple[typer.Typer, str]) -> None:
    app, _ = cli
    r = CliRunner().invoke(app, ["serve", "--help"])
    assert r.exit_code == 0 and "--demo" in r.output


def test_serve_without_secret_key_outside_demo_fails(
    cli: tuple[typer.Typer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = cli
    monkeypatch.delenv("LDNCARE_SECRET_KEY", raising=False)
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 2 and "LDNCARE_SECRET_KEY" in r.output


def test_serve_runs_on_the_asyncio_loop_unless_told(
    cli: tuple[typer.Typer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    app, _ = cli
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kw: calls.append(kw))
    monkeypatch.setattr("ldncare.web.demo.load_if_empty", lambda engine: None)
    for args, loop in (
        (["serve", "--demo"], "asyncio"),
        (["serve", "--demo", "--loop", "uvloop"], "uvloop"),
    ):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        assert calls[-1]["loop"] == loop and calls[-1]["workers"] == 1


def test_serve_with_unknown_loop_fails_with_the_choices(cli: tuple[typer.Typer, str]) -> None:
    app, _ = cli
    r = CliRunner().invoke(app, ["serve", "--demo", "--loop", "tornado"])
    assert r.exit_code == 2
    assert "--loop must be one of asyncio, uvloop, not 'tornado'" in r.output
