"""``ldncare serve`` (the web app under uvicorn) and ``ldncare user ...`` (accounts: add, list,
disable, enable, reset-password, set-role, reset-totp)."""

from __future__ import annotations

import gc
import getpass
import os
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ldncare.errors import LdncareError, NotFound

if TYPE_CHECKING:
    from ldncare.web.settings import WebSettings

user_app = typer.Typer(help="Web accounts (clinicians, patients, administrators).",
                       no_args_is_help=True)  # fmt: skip


class Role(StrEnum):
    clinician = "clinician"
    patient = "patient"
    admin = "admin"


#: Event loops ``ldncare serve --loop`` accepts (uvicorn's names).
_LOOPS = ("asyncio", "uvloop")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"ldncare: error: {message}", err=True)
    raise typer.Exit(code)


def uvicorn_options(settings: WebSettings, *, host: str, port: int, loop: str) -> dict[str, Any]:
    """What ``serve`` gives uvicorn (one worker or each of several)."""
    return {
        "host": host,
        "port": port,
        # The standard asyncio loop by default, not uvloop. Under wrk with 50 new connections,
        # uvloop admitted about one new connection per loop pass, so the first request of the
        # last connections waited up to 0.8 s: CDS Hooks p99 180-570 ms against 42-46 ms with
        # asyncio at the same throughput (bench/README.md; compare MagicStack/uvloop#631).
        # uvloop also has an open report of responses reaching the wrong request under heavy
        # load with uvicorn (MagicStack/uvloop#645), which a clinical app cannot risk.
        "loop": loop,
        "http": "httptools",
        "access_log": False,
        "log_level": "warning",
        # The client address the login limit and the audit log use: the TCP peer unless the
        # operator named trusted proxies (uvicorn's own default trusts 127.0.0.1 and ::1).
        **settings.proxy_options(),
    }


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Load synthetic demo patients into an empty database and relax production-only "
            "checks (no secret key needed, cookies over plain http, no CDS Hooks JWT check).",
        ),
    ] = False,
    loop: Annotated[
        str,
        typer.Option(
            help="Event loop: asyncio (default) or uvloop. See bench/README.md before changing: "
            "uvloop answered new connections late under load.",
        ),
    ] = "asyncio",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes, e.g. one per core. They share the database and the session "
            "key; the login rate limit and CDS Hooks feedback are kept per worker.",
        ),
    ] = 1,
) -> None:
    """Start the web app (JSON API, pages and CDS Hooks) under uvicorn.

    The database is LDNCARE_DATABASE_URL (default: a SQLite file in the user's data folder).
    """
    import uvicorn

    if loop not in _LOOPS:
        _fail(f"--loop must be one of {', '.join(_LOOPS)}, not {loop!r}")
        return
    from pydantic import ValidationError

    from ldncare.web.app import WORKER_FACTORY, create_app, worker_environment
    from ldncare.web.demo import load_if_empty
    from ldncare.web.server import run_workers
    from ldncare.web.settings import WebSettings

    try:
        settings = WebSettings()
        if demo:
            settings = settings.model_copy(update={"demo": True, "cookie_secure": False})
        app = create_app(settings)
    except LdncareError as exc:
        _fail(str(exc))
        return
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(str(first["msg"]).removeprefix("Value error, "))
        return
    url = f"http://{host}:{port}/"
    if demo:
        typer.echo("ldncare: DEMO MODE — synthetic data only; production checks are relaxed:")
        typer.echo("  random session key, cookies without Secure, CDS Hooks JWT check off.")
        logins = load_if_empty(app.state.engine)
        if logins is None:
            typer.echo("  the database already holds data: demo data not loaded.")
        else:
            app.state.demo_logins = logins
            typer.echo("  demo logins (username / password / role):")
            for username, password, role in logins:
                typer.echo(f"    {username:18} {password:14} {role}")
    typer.echo(f"ldncare: serving on {url}  (API docs: {url}docs)")
    options = uvicorn_options(settings, host=host, port=port, loop=loop)
    if workers > 1:
        # Each worker builds its own app from the environment (uvicorn starts them fresh). The
        # database is migrated and the demo loaded above, once; the workers get the settings
        # this process used, including its session key, so a login made on one worker is
        # valid on all of them.
        os.environ.update(worker_environment(app.state.settings, app.state.demo_logins))
        app.state.engine.dispose()
        typer.echo(f"  {workers} worker processes")
        try:
            code = run_workers(WORKER_FACTORY, workers, options)
        except OSError as exc:
            _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            return
        if code:
            _fail("a worker stopped right after starting; see the messages above", code)
        return
    # The evidence base, vocabulary and modules are loaded for good: move them out of the
    # collector's sight, so a full collection under load scans only request garbage (a full
    # collection over them takes ~50 ms, which showed up as p99 latency spikes).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, workers=1, **options)


@user_app.command("add")
def user_add(
    username: Annotated[
        str,
        typer.Argument(metavar="USERNAME", help="Login name (lower-case letters, digits, . _ -)."),
    ],
    role: Annotated[Role, typer.Option(help="What the account may do.")],
    clinic: Annotated[str | None, typer.Option(help="Clinic id (required for clinicians).")] = None,
    patient: Annotated[
        str | None, typer.Option(help="Patient id or external id (patient accounts).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a web account. The password is asked for twice unless --password-stdin."""
    from ldncare.store.db import open_engine
    from ldncare.web.auth import create_user

    password = _read_password(password_stdin)
    try:
        row = create_user(
            open_engine(),
            username,
            password,
            role=role.value,
            clinic_id=clinic,
            patient=patient,
            actor=f"cli:{getpass.getuser()}",
        )
    except NotFound as exc:
        _fail(str(exc), 3)
        return
    except LdncareError as exc:
        _fail(str(exc))
        return
    typer.echo(f"user {row.username} ({row.role}) created")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        _fail("the passwords differ")
    return password


def _account_change(change: Any) -> None:
    """Run one account change; NotFound exits 3, other bad input 2, both one line."""
    try:
        change()
    except NotFound as exc:
        _fail(str(exc), 3)
    except LdncareError as exc:
        _fail(str(exc))


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


@user_app.command("list")
def user_list() -> None:
    """List the accounts: username, role, clinic or patient record, active or disabled."""
    from ldncare.store.db import open_engine
    from ldncare.web.accounts import list_accounts

    for a in list_accounts(open_engine()):
        where = a.clinic_id or (f"patient #{a.patient_id}" if a.patient_id else "-")
        state = "active" if a.active else "disabled"
        typer.echo(f"{a.username:24} {a.role:10} {where:20} {state}")


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Disable an account: it cannot log in, and every session it has ends at once."""
    from ldncare.store.db import open_engine
    from ldncare.web.accounts import set_active

    changed: list[bool] = []
    _account_change(
        lambda: changed.append(set_active(open_engine(), username, False, actor=_cli_actor()))
    )
    typer.echo(f"user {username} {'disabled' if changed[0] else 'was already disabled'}")


@user_app.command("enable")
def user_enable(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Enable a disabled account. Sessions from before it was disabled stay ended."""
    from ldncare.store.db import open_engine
    from ldncare.web.accounts import set_active

    changed: list[bool] = []
    _account_change(
        lambda: changed.append(set_active(open_engine(), username, True, actor=_cli_actor()))
    )
    typer.echo(f"user {username} {'enabled' if changed[0] else 'was already enabled'}")


@user_app.command("reset-password")
def user_reset_password(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a new password (asked for twice unless --password-stdin); the account's sessions
    end."""
    from ldncare.store.db import open_engine
    from ldncare.web.accounts import reset_password

    password = _read_password(password_stdin)
    _account_change(lambda: reset_password(open_engine(), username, password, actor=_cli_actor()))
    typer.echo(f"password of {username} reset; its sessions have ended")


@user_app.command("set-role")
def user_set_role(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[Role, typer.Option(help="The new role: clinician or admin.")],
    clinic: Annotated[str | None, typer.Option(help="Clinic id (required for clinicians).")] = None,
) -> None:
    """Change a staff account's role (clinician of a clinic, or admin); its sessions end."""
    from ldncare.store.db import open_engine
    from ldncare.web.accounts import set_role

    _account_change(
        lambda: set_role(open_engine(), username, role.value, clinic_id=clinic, actor=_cli_actor())
    )
    typer.echo(f"user {username} is now {role.value}" + (f" of {clinic}" if clinic else ""))


@user_app.command("reset-totp")
def user_reset_totp(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Remove an account's two-step login (a lost phone) and its recovery codes; its sessions
    end. It sets it up again at its next login when the settings require it."""
    from ldncare.store.db import open_engine
    from ldncare.web.auth import reset_totp

    had: list[bool] = []
    _account_change(lambda: had.append(reset_totp(open_engine(), username, actor=_cli_actor())))
    state = "removed" if had[0] else "was not set up"
    typer.echo(f"two-step login of {username} {state}; its sessions have ended")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``user add`` to the ldncare command line."""
    app.command("serve")(serve)
    app.add_typer(user_app, name="user")
