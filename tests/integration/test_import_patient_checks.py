"""Issue #19 item 8: ``ldncare import`` refuses what ``plan`` refuses about the patient herself
-- a birth date outside 1900-today (SAFETY.md H17) and an external id outside the one rule
(``store.external_id``) -- per patient, listed like every other skipped patient, in Bundles and
Bulk NDJSON alike (exit 1 when no patient is left, 4 when some are)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ldncare.cli import EXIT_FAILED, EXIT_INVALID, EXIT_PARTIAL, app

TOMORROW = (date.today() + timedelta(days=1)).isoformat()


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _woman_with_pudendal_neuralgia(pid: str, born: str) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": born},
        {
            "resourceType": "Condition",
            "id": f"c-{pid}",
            "subject": {"reference": f"Patient/{pid}"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Pudendal neuralgia"},
        },
    ]


def _bundle_file(path: Path, pid: str, born: str) -> Path:
    entries = [{"resource": r} for r in _woman_with_pudendal_neuralgia(pid, born)]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    return path


def _listed(pid: str) -> bool:
    code, out, _ = _run("patient", "list")
    assert code == 0
    return any(line.split("\t")[1:2] == [pid] for line in out.splitlines())


@pytest.mark.parametrize("born", ["0001-01-01", "1899-12-31", "2999-01-01", TOMORROW])
def test_bundle_of_a_patient_with_an_impossible_birth_date_is_not_imported(
    tmp_path: Path, born: str
) -> None:
    code, out, err = _run("import", "--json", str(_bundle_file(tmp_path / "b.json", "pb", born)))
    assert code == EXIT_FAILED, err
    (issue,) = json.loads(out)["errors"]
    assert issue["field"] == "birthDate" and issue["patient_id"] == "pb"
    assert f"{born} is not a possible birth date" in issue["message"]
    assert not _listed("pb")
    # plan refuses the same file (exit 2): the two commands agree.
    assert _run("plan", str(tmp_path / "b.json"))[0] == EXIT_INVALID


def test_bundle_born_on_the_first_day_of_1900_is_imported(tmp_path: Path) -> None:
    code, _, err = _run("import", str(_bundle_file(tmp_path / "b.json", "p1900", "1900-01-01")))
    assert code == 0, err
    assert _listed("p1900")


def test_bulk_export_skips_only_the_patient_born_in_year_one_and_lists_her(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    ok = _woman_with_pudendal_neuralgia("ok", "1970-05-01")
    old = _woman_with_pudendal_neuralgia("old", "0001-01-01")
    (export / "Patient.ndjson").write_text(json.dumps(ok[0]) + "\n" + json.dumps(old[0]) + "\n")
    (export / "Condition.ndjson").write_text(json.dumps(ok[1]) + "\n" + json.dumps(old[1]) + "\n")
    code, out, err = _run("import", "--json", str(export))
    assert code == EXIT_PARTIAL, err
    report = json.loads(out)
    assert report["patients"]["imported"] == 1 and report["patients"]["skipped"] == 1
    (issue,) = report["errors"]
    assert (issue["patient_id"], issue["field"]) == ("old", "birthDate")
    assert _listed("ok") and not _listed("old")
    code, out, _ = _run("screen")
    assert "old" not in out.split()


def test_bulk_export_patient_whose_id_breaks_the_rule_is_skipped_and_listed(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    patients = [
        {"resourceType": "Patient", "id": i, "birthDate": "1970-01-01"} for i in ("ok", "a b")
    ]
    (export / "Patient.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
    code, out, err = _run("import", "--json", str(export))
    assert code == EXIT_PARTIAL, err
    (issue,) = json.loads(out)["errors"]
    assert issue["field"] == "id" and "cannot be used for a new patient" in issue["message"]
    assert _listed("ok")
