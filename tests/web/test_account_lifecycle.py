"""Issue #19: ``ldncare user list|disable|enable|reset-password|set-role``. Disabling ends all
sessions, enabling does not revive an old cookie, and every change is audited."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from ldncare.cli.web_commands import register
from ldncare.store.models import AuditRow, UserRow
from tests.web.conftest import PASSWORD, World

NEW_PASSWORD = "a fresh passphrase for spring"


@pytest.fixture
def user_cli(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The ``user`` commands on the world's database (tests/web/conftest.py: tmp_path/web.db)."""
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'web.db'}")
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def user(app: typer.Typer, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, ["user", *args], input=stdin)


def _audit(world: World, action: str) -> list[AuditRow]:
    with Session(world.engine) as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.action == action)).all())


def _sees_patients(world: World) -> int:
    return world.client.get("/api/patients").status_code


def test_disabled_clinician_is_logged_out_and_reenabling_does_not_revive_the_cookie(
    world: World, user_cli: typer.Typer
) -> None:
    world.login("clin1")
    assert _sees_patients(world) == 200
    old_cookies = dict(world.client.cookies)

    result = user(user_cli, "disable", "clin1")
    assert result.exit_code == 0, result.output
    assert _sees_patients(world) == 401  # the open session ended at once
    r = world.client.post("/api/session", json={"username": "clin1", "password": PASSWORD})
    assert r.status_code == 401  # and a disabled account cannot log in

    assert user(user_cli, "enable", "clin1").exit_code == 0
    world.client.cookies.clear()
    world.client.cookies.update(old_cookies)
    assert _sees_patients(world) == 401  # the cookie from before stays dead
    world.login("clin1")
    assert _sees_patients(world) == 200  # a fresh login works

    (disabled,) = _audit(world, "disable")
    (enabled,) = _audit(world, "enable")
    assert disabled.who.startswith("cli:") and disabled.detail == {"username": "clin1"}
    assert enabled.entity == "user" and enabled.entity_id == disabled.entity_id


def test_user_list_shows_roles_clinics_and_who_is_disabled(
    world: World, user_cli: typer.Typer
) -> None:
    user(user_cli, "disable", "bert")
    out = user(user_cli, "list").output.splitlines()
    rows = {line.split()[0]: line.split() for line in out}
    assert set(rows) == {"anna", "bert", "clin1", "clin2", "root"}
    assert rows["clin2"][1:] == ["clinician", "clinic-2", "active"]
    assert rows["root"][1:] == ["admin", "-", "active"]
    assert rows["bert"][-1] == "disabled" and rows["anna"][-1] == "active"


def test_reset_password_ends_sessions_and_only_the_new_password_works(
    world: World, user_cli: typer.Typer
) -> None:
    world.login("clin2")
    result = user(user_cli, "reset-password", "clin2", "--password-stdin", stdin=NEW_PASSWORD)
    assert result.exit_code == 0, result.output
    assert _sees_patients(world) == 401
    old = world.client.post("/api/session", json={"username": "clin2", "password": PASSWORD})
    assert old.status_code == 401
    world.login("clin2", NEW_PASSWORD)
    assert _sees_patients(world) == 200
    (row,) = _audit(world, "reset_password")
    assert NEW_PASSWORD not in str(row.detail)


def test_reset_password_refuses_a_short_one_and_changes_nothing(
    world: World, user_cli: typer.Typer
) -> None:
    result = user(user_cli, "reset-password", "clin2", "--password-stdin", stdin="short")
    assert result.exit_code == 2
    assert "characters long" in result.output
    world.login("clin2")  # the old password still works


def test_clinician_promoted_to_admin_sees_the_other_clinic_after_logging_in_again(
    world: World, user_cli: typer.Typer
) -> None:
    world.login("clin1")
    assert world.client.get(f"/api/patients/{world.carl}").status_code == 404
    result = user(user_cli, "set-role", "clin1", "--role", "admin")
    assert result.exit_code == 0, result.output
    assert _sees_patients(world) == 401  # sessions end on a role change
    world.login("clin1")
    assert world.client.get(f"/api/patients/{world.carl}").status_code == 200
    (row,) = _audit(world, "set_role")
    assert row.detail is not None
    assert row.detail["before"] == {"role": "clinician", "clinic": "clinic-1"}
    assert row.detail["after"] == {"role": "admin", "clinic": None}


def test_admin_moved_to_a_clinic_sees_only_that_clinic(world: World, user_cli: typer.Typer) -> None:
    # root is the only admin: clin2 takes over first (the last admin cannot be demoted).
    assert user(user_cli, "set-role", "clin2", "--role", "admin").exit_code == 0
    assert (
        user(user_cli, "set-role", "root", "--role", "clinician", "--clinic", "clinic-2").exit_code
        == 0
    )
    world.login("root")
    assert world.client.get(f"/api/patients/{world.anna}").status_code == 404
    assert world.client.get(f"/api/patients/{world.carl}").status_code == 200


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("set-role", "root", "--role", "clinician"), 2, "needs a clinic"),
        (("set-role", "anna", "--role", "admin"), 2, "tied to one patient record"),
        (("set-role", "clin1", "--role", "patient"), 2, "cannot be given to an existing"),
        (("disable", "nobody"), 3, "no user 'nobody'"),
        (("enable", "nobody"), 3, "no user 'nobody'"),
        (("reset-password", "nobody", "--password-stdin"), 3, "no user 'nobody'"),
    ],
)
def test_bad_account_changes_exit_nonzero_with_one_line_and_change_nothing(
    world: World, user_cli: typer.Typer, args: tuple[str, ...], code: int, needle: str
) -> None:
    result = user(user_cli, *args, stdin=NEW_PASSWORD)
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert _audit(world, "set_role") == [] and _audit(world, "disable") == []
    world.login("anna")
    world.login("root")


def test_account_disabled_by_hand_in_sql_does_not_get_its_old_cookie_back_on_enable(
    world: World, user_cli: typer.Typer
) -> None:
    """How the security test found it: an account deactivated with raw SQL, then re-enabled."""
    world.login("clin1")
    with Session(world.engine) as s, s.begin():
        s.execute(update(UserRow).where(UserRow.username == "clin1").values(active=False))
    assert _sees_patients(world) == 401
    assert user(user_cli, "enable", "clin1").exit_code == 0
    assert _sees_patients(world) == 401


# --- the last active administrator (issue #19 item 15) -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("set-role", "root", "--role", "clinician", "--clinic", "clinic-1"), ("disable", "root")],
)
def test_the_only_admin_cannot_be_demoted_or_disabled_from_the_cli(
    world: World, user_cli: typer.Typer, args: tuple[str, ...]
) -> None:
    result = user(user_cli, *args)
    assert result.exit_code == 2, result.output
    assert "last active administrator" in result.output
    assert _audit(world, "set_role") == [] and _audit(world, "disable") == []
    world.login("root")
    assert world.client.get(f"/api/patients/{world.carl}").status_code == 200


def test_with_a_second_admin_the_first_can_be_disabled_but_then_not_the_second(
    world: World, user_cli: typer.Typer
) -> None:
    assert user(user_cli, "set-role", "clin1", "--role", "admin").exit_code == 0
    assert user(user_cli, "disable", "root").exit_code == 0
    refused = user(user_cli, "set-role", "clin1", "--role", "clinician", "--clinic", "clinic-1")
    assert refused.exit_code == 2, refused.output
    assert "last active administrator" in refused.output
    assert user(user_cli, "disable", "clin1").exit_code == 2


def test_a_disabled_admin_does_not_count_as_the_admin_left(
    world: World, user_cli: typer.Typer
) -> None:
    assert user(user_cli, "set-role", "clin1", "--role", "admin").exit_code == 0
    assert user(user_cli, "disable", "clin1").exit_code == 0
    assert user(user_cli, "disable", "root").exit_code == 2
