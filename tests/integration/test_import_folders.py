"""Issue #19 item 12: a folder import says what it did not read -- subfolders too, in a folder
of Bundles and in a Bulk export -- and a folder with nothing to read names both kinds of input
ldncare takes (FHIR Bundles and NDJSON), not NDJSON alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ldncare.cli import EXIT_INVALID, app


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")


def _patient(pid: str) -> dict[str, object]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1975-06-01"}


def _bundle(pid: str) -> str:
    entry = [{"resource": _patient(pid)}]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entry})


def _import_json(folder: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["import", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_synthea_folder_with_a_subfolder_of_bundles_lists_the_subfolder_as_not_read(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "fhir"
    (folder / "older").mkdir(parents=True)
    (folder / "pa.json").write_text(_bundle("pa"))
    (folder / "older" / "pc.json").write_text(_bundle("pc"))
    report = _import_json(folder)
    assert report["files"] == ["pa.json"]
    assert report["ignored_files"] == ["older/ (a folder: subfolders are not read)"]


def test_bulk_export_with_a_subfolder_lists_it_with_the_other_files_not_read(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export"
    (export / "attachments").mkdir(parents=True)
    (export / "Patient.ndjson").write_text(json.dumps(_patient("pb")) + "\n")
    (export / "manifest.txt").write_text("x")
    report = _import_json(export)
    assert report["ignored_files"] == ["attachments/", "manifest.txt"]


@pytest.mark.parametrize("content", [[], ["sub/"], ["notes.txt"]])
def test_a_folder_with_nothing_to_read_names_bundles_and_ndjson_and_what_it_holds(
    tmp_path: Path, content: list[str]
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    for name in content:
        if name.endswith("/"):
            (folder / name).mkdir()
        else:
            (folder / name).write_text("x")
    result = CliRunner().invoke(app, ["import", str(folder)])
    assert result.exit_code == EXIT_INVALID
    (line,) = result.stderr.strip().splitlines()
    assert "FHIR Bundles (files ending in .json" in line and "Patient.ndjson" in line
    assert line.endswith(f"the folder holds {content[0]}" if content else "the folder is empty")
