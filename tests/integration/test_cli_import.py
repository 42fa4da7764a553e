"""``ldncare import`` and ``ldncare screen --ndjson`` exit statuses: a script running them must
be able to tell a clean import from one that left patients out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from ldncare.cli import EXIT_FAILED, EXIT_INVALID, EXIT_PARTIAL, app
from ldncare.store.db import open_engine


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01"}


def _opioid(rid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Oxycodone Hydrochloride 5 MG Oral Tablet"},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2025-06-01",
    }


def _export(folder: Path, patients: list[str], broken: tuple[str, ...] = ()) -> Path:
    """An export of ``patients``, plus a truncated Patient line for each of ``broken``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(_patient(p)) for p in patients]
    lines += [json.dumps(_patient(p))[:-20] for p in broken]
    (folder / "Patient.ndjson").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("LDNCARE_DATABASE_URL", url)
    return url


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_clean_import_exits_0(tmp_path: Path, store: str) -> None:
    code, _, err = _run("import", str(_export(tmp_path / "export", ["a", "b"])))
    assert code == 0, err


def test_an_import_that_skips_one_patient_of_many_exits_4(tmp_path: Path, store: str) -> None:
    export = _export(tmp_path / "export", [f"p{i}" for i in range(9)], broken=("bad",))
    code, _, err = _run("import", str(export))
    assert code == EXIT_PARTIAL == 4
    assert (
        "imported in part" in err
        and "1 patient skipped" in err
        and "(10 patients read, 9 imported)" in err
    )
    code, out, _ = _run("import", "--json", str(export))
    assert code == EXIT_PARTIAL
    assert json.loads(out)["patients"]["skipped"] == 1


def test_an_import_that_reads_no_patient_exits_1(tmp_path: Path, store: str) -> None:
    code, _, err = _run("import", str(_export(tmp_path / "export", [], broken=("x", "y"))))
    assert code == EXIT_FAILED
    assert "no patient imported" in err


def test_an_export_with_an_empty_patient_file_exits_1(tmp_path: Path, store: str) -> None:
    # Nothing read and nothing reported: still no patient imported, not a clean import.
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_text("")
    code, _, err = _run("import", str(export))
    assert code == EXIT_FAILED
    assert "no patient imported" in err and "no Patient resource" in err
    code, out, _ = _run("import", "--json", str(export))
    assert code == EXIT_FAILED and json.loads(out)["patients"]["imported"] == 0


def test_a_bundle_file_starting_with_a_utf8_byte_order_mark_is_imported(
    tmp_path: Path, store: str
) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": _patient("a")}]}  # fmt: skip
    path = tmp_path / "bundle.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(bundle).encode())
    code, out, err = _run("import", "--json", str(path))
    assert code == 0, err
    assert json.loads(out)["patients"]["imported"] == 1


def test_a_bundle_file_that_is_not_utf8_names_the_byte_and_its_offset(
    tmp_path: Path, store: str
) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": "\xff"}')
    code, _, err = _run("import", str(path))
    assert code == EXIT_INVALID
    assert "byte 0xff at offset 10" in err and "must be encoded in UTF-8" in err


def test_a_database_failing_for_some_patients_makes_the_import_partial(
    tmp_path: Path, store: str
) -> None:
    # The database refuses one patient's row (as a dropped connection refuses all those
    # after it): those patients are skipped, and the run must not pass for a clean one.
    engine = open_engine(store)
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TRIGGER refuse_b BEFORE INSERT ON patients WHEN NEW.external_id = 'b' "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        ))  # fmt: skip
    engine.dispose()
    code, _, err = _run("import", str(_export(tmp_path / "export", ["a", "b", "c"])))
    assert code == EXIT_PARTIAL
    assert "1 patient skipped" in err


def test_a_folder_with_no_export_file_is_an_error_naming_the_files_read(
    tmp_path: Path, store: str
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    # (A folder of .json Bundles is read Bundle by Bundle: test_cli_polish.py.)
    (folder / "patients.csv").write_text("id,name\n")
    code, _, err = _run("import", str(folder))
    assert code == EXIT_INVALID
    assert "no export file" in err and "Patient.ndjson" in err
    for suffix in (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz"):
        assert suffix in err
    assert "patients.csv" in err


def test_import_help_documents_the_exit_statuses() -> None:
    code, out, _ = _run("import", "--help")
    assert code == 0 and "Exit status" in out and "4 = imported in part" in out


def test_screen_of_an_export_with_skipped_patients_exits_4_and_lists_them(
    tmp_path: Path, store: str
) -> None:
    export = _export(tmp_path / "export", ["a"], broken=("bad",))
    (export / "MedicationRequest.ndjson").write_text(json.dumps(_opioid("m", "a")) + "\n")
    code, out, err = _run("screen", "--ndjson", str(export), "--format", "json")
    assert code == EXIT_PARTIAL
    assert json.loads(out)["count"] >= 0  # the worklist is still printed
    assert "1 patient skipped" in err
    assert "Patient.ndjson:2" in err and "[patient bad]" in err  # the issue itself
    # The old hint sent the user to `ldncare import`, which writes into the real store.
    assert "ldncare import" not in err
    code, _, err = _run("screen", "--ndjson", str(export), "--max-errors", "0")
    assert code == EXIT_PARTIAL and "--max-errors 1 lists them all" in err
    assert not (tmp_path / "store.db").exists(), "screen --ndjson wrote to the store"


def test_screen_of_a_clean_export_exits_0(tmp_path: Path, store: str) -> None:
    code, _, err = _run("screen", "--ndjson", str(_export(tmp_path / "export", ["a"])))
    assert code == 0, err
    assert err == ""
