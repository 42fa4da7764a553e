"""``ldncare nantes``: the Nantes criteria checklist for pudendal neuralgia, and its result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ldncare.cli import dump_json, emit, handle_errors
from ldncare.errors import InvalidInput, MissingFile


def read_answers(path: Path) -> dict[str, bool | None]:
    """Read ``{item_id: true|false|null}`` from a YAML or JSON file."""
    import yaml

    if not path.is_file():
        raise MissingFile(f"Nantes answers file {path} does not exist")
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML/JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path}: expected a mapping of item id to true, false or null")
    return {str(k): v for k, v in raw.items()}


def register(app: typer.Typer) -> None:
    @app.command("nantes")
    @handle_errors
    def nantes(
        answers: Annotated[
            Path | None,
            typer.Option("--answers", help="YAML/JSON file: item id -> true/false/null."),
        ] = None,
        yes: Annotated[
            list[str] | None,
            typer.Option("--yes", metavar="ID", help="Item id answered yes. Repeatable."),
        ] = None,
        no: Annotated[
            list[str] | None,
            typer.Option("--no", metavar="ID", help="Item id answered no. Repeatable."),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show the Nantes criteria checklist, or score the answers given."""
        from ldncare.core.nantes import assess_nantes
        from ldncare.evidence.loader import load_evidence

        criteria = load_evidence().nantes
        given: dict[str, bool | None] = read_answers(answers) if answers else {}
        given.update({item: True for item in yes or []})
        given.update({item: False for item in no or []})
        if not given:
            assert criteria is not None
            if json_out:
                emit(dump_json([i.model_dump() for i in criteria.items]), None)
                return
            for kind in ("essential", "complementary", "exclusion", "associated"):
                typer.echo(f"{kind.upper()}")
                for item in criteria.of_kind(kind):
                    typer.echo(f"  {item.id:<36} {item.text}")
            typer.echo("Answer with --yes ID / --no ID or --answers FILE.")
            return
        result = assess_nantes(given, criteria)
        if json_out:
            emit(json.dumps(result.to_contract(), indent=2) + "\n", None)
            return
        typer.echo(f"Result: {result.status.replace('_', ' ')}")
        typer.echo(result.meaning)
        if result.unanswered:
            typer.echo(f"Unanswered: {', '.join(result.unanswered)}")
        typer.echo(f"Source: {', '.join(result.citations)}")
