"""The ``ldncare`` command line. Each command is a thin adapter over the core."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer

from ldncare.errors import LdncareError

app = typer.Typer(
    name="ldncare",
    help="Clinical decision support for low-dose naltrexone (LDN) in pudendal neuralgia and "
    "other neuropathic pain. LDN is off-label: every output shows its sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: paragraphs re-wrapped to the terminal, flags without a '<bool>' type column.
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes: 1 = a file or the database could not be used (and an import that read no
#: patient), 2 = bad input (typer's own usage errors use 2 as well), 3 = not found,
#: 4 = an import (or ``screen --ndjson``) done in part: some patients or resources were not
#: imported. A script must not take 4 for success: the skipped patients are missing from the
#: store (or from the worklist), and a skipped patient may be one who needs action.
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_PARTIAL = 4


def fail(message: str, code: int = EXIT_INVALID) -> None:
    """Print one clear line on stderr and exit non-zero."""
    typer.echo(f"ldncare: error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Map the core's exceptions to one stderr line and an exit code, in one place."""
    import functools

    from ldncare.errors import MissingFile, NotFound, UnreadableFile

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NotFound as exc:
            fail(str(exc), EXIT_NOT_FOUND)
        except (MissingFile, UnreadableFile) as exc:
            fail(str(exc), EXIT_FAILED)
        except LdncareError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_FAILED)
        except Exception as exc:
            # Database errors reach here; SQLAlchemy is imported lazily to keep start-up fast.
            from sqlalchemy.exc import SQLAlchemyError

            if not isinstance(exc, SQLAlchemyError):
                raise
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fail(f"database error: {first}", EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


class PlanFormat(StrEnum):
    md = "md"
    html = "html"
    json = "json"


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date; use YYYY-MM-DD")
    return None  # pragma: no cover - fail() raises


def emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def main() -> None:
    """Console-script entry point."""
    app()


# Command modules register themselves on import; keep this list the one place they are wired.
from ldncare.cli import (  # noqa: E402
    ask_command,
    ehr_commands,
    export_command,
    followup_commands,
    nantes_command,
    plan_commands,
    web_commands,
)

plan_commands.register(app)
nantes_command.register(app)
followup_commands.register(app)
export_command.register(app)
ask_command.register(app)
web_commands.register(app)
ehr_commands.register(app)
