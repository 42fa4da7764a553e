"""The CLI as a new user meets it: a Synthea output folder imports, a missing file exits as the
README says, the bibliography is best evidence first, and the help reads cleanly."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.evidence.models import EVIDENCE_RANK, GRADE_RANK
from ldncare.store.db import open_engine
from ldncare.store.models import PatientRow
from tests.shared_data import SYNTHEA, synthea_bundles

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "src" / "ldncare" / "examples" / "pn-example.yaml"
INDEX = {row["file"]: row for row in json.loads((SYNTHEA / "_INDEX.json").read_text())}


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("LDNCARE_DATABASE_URL", url)
    return url


def _synthea_output(folder: Path, patients: list[Path]) -> Path:
    """A Synthea ``output/fhir`` folder: patient Bundles, a practitioner and a hospital file."""
    folder.mkdir()
    for path in patients:
        shutil.copy(path, folder / path.name)
    practitioners = next(SYNTHEA.glob("practitionerInformation*.json"))
    shutil.copy(practitioners, folder / practitioners.name)
    hospital = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Organization", "id": "h1", "name": "Clinic"}}],
    }
    (folder / "hospitalInformation1559319163815.json").write_text(json.dumps(hospital))
    return folder


def _patients(url: str) -> set[str]:
    with open_engine(url).connect() as conn:
        return set(conn.execute(select(PatientRow.external_id)).scalars())


def test_synthea_output_folder_imports_every_patient_and_lists_the_other_bundles(
    tmp_path: Path, store: str
) -> None:
    bundles = synthea_bundles()[:3]
    folder = _synthea_output(tmp_path / "fhir", bundles)
    code, out, err = _run("import", str(folder), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["patients"]["imported"] == len(bundles)
    assert report["errors"] == []
    assert sorted(report["files"]) == sorted(p.name for p in bundles)
    assert report["medications"]["total"] == sum(
        INDEX[p.name]["n_MedicationRequest"] for p in bundles
    )
    assert _patients(store) == {INDEX[p.name]["patient_id"] for p in bundles}
    not_read = report["ignored_files"]
    assert len(not_read) == 2
    assert any(f.startswith("practitionerInformation") and "Practitioner" in f for f in not_read)
    assert any(f.startswith("hospitalInformation") and "Organization" in f for f in not_read)
    # Again: nothing new, nothing duplicated.
    code, out, _ = _run("import", str(folder), "--json")
    assert code == 0 and json.loads(out)["patients"]["unchanged"] == len(bundles)
    with open_engine(store).connect() as conn:
        assert conn.execute(select(func.count()).select_from(PatientRow)).scalar_one() == 3


def test_a_json_in_the_folder_that_is_not_a_bundle_makes_the_import_partial(
    tmp_path: Path, store: str
) -> None:
    folder = _synthea_output(tmp_path / "fhir", synthea_bundles()[:1])
    (folder / "notes.txt").write_text("not FHIR")
    (folder / "broken.json").write_text("{not json")
    (folder / "lonely-patient.json").write_text('{"resourceType": "Patient", "id": "x"}')
    code, out, err = _run("import", str(folder))
    assert code == 4, err
    assert "patients imported" in out and "broken.json" in out and "lonely-patient.json" in out
    assert "notes.txt (not a .json Bundle)" in " ".join(out.split())
    assert "imported in part" in err


def test_a_folder_with_only_practitioners_imports_no_patient_and_exits_1(
    tmp_path: Path, store: str
) -> None:
    folder = _synthea_output(tmp_path / "fhir", [])
    code, out, err = _run("import", str(folder))
    assert code == 1
    assert "no patient imported" in err and "none of its Bundles holds a Patient" in err
    assert "a Bundle without a Patient: Practitioner" in " ".join(out.split())
    assert _patients(store) == set()


def test_a_bulk_export_folder_is_still_read_as_ndjson(tmp_path: Path, store: str) -> None:
    folder = tmp_path / "bulk"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(
        json.dumps({"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"}) + "\n"
    )
    (folder / "manifest.json").write_text("{}")
    code, out, err = _run("import", str(folder), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["patients"]["imported"] == 1 and "manifest.json" in report["ignored_files"]


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "{missing}"),
        ("nantes", "--answers", "{missing}"),
        ("import", "{missing}"),
        ("plan", str(EXAMPLE), "--nantes", "{missing}"),
    ],
    ids=["plan", "nantes-answers", "import", "plan-nantes"],
)
def test_a_missing_file_exits_1_as_the_readme_says(
    tmp_path: Path, store: str, args: tuple[str, ...]
) -> None:
    missing = str(tmp_path / "no-such-file.yaml")
    code, _out, err = _run(*(a.replace("{missing}", missing) for a in args))
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no-such-file.yaml" in lines[0]
    readme = (ROOT / "README.md").read_text()
    assert "1 when a file or the database cannot be used (a file that does not exist" in readme


def test_sources_are_listed_best_evidence_first() -> None:
    code, out, _ = _run("sources", "--json")
    assert code == 0
    sources = json.loads(out)
    keys = [
        (GRADE_RANK[s["grade"]], EVIDENCE_RANK[s["evidence_type"]], -s["year"]) for s in sources
    ]
    assert keys == sorted(keys)
    grades = [s["grade"] for s in sources]
    # Every high-certainty source comes before every low-certainty one, whatever its kind.
    assert max(i for i, g in enumerate(grades) if g == "high") < min(
        i for i, g in enumerate(grades) if g in ("low", "very_low")
    )
    code, text, _ = _run("sources")
    assert [line.split("]")[0][1:] for line in text.splitlines()] == [s["id"] for s in sources]


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [(*prefix, c.name or c.callback.__name__) for c in group.registered_commands]  # type: ignore[union-attr]
    for sub in group.registered_groups:
        assert sub.name is not None and sub.typer_instance is not None
        found += _commands(sub.typer_instance, (*prefix, sub.name))
    return found


COMMANDS = _commands(app)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_has_no_type_noise_and_its_paragraphs_are_wrapped_once(
    command: tuple[str, ...],
) -> None:
    code, out, _ = _run(*command, "--help", env={"COLUMNS": "80"})
    assert code == 0
    assert "<bool>" not in out and "<list[" not in out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    # A paragraph wrapped by a fixed newline leaves a short line followed by more of the same
    # sentence (a lower-case word): the help re-wraps paragraphs to the terminal instead.
    description = out.split("\nArguments:")[0].split("\nOptions:")[0].splitlines()
    for line, after in itertools.pairwise(description):
        if after.strip() and after.strip()[0].islower() and line.strip():
            assert len(line) > 60, f"broken wrap in {' '.join(command)} --help:\n{line}\n{after}"


def test_every_command_is_checked_for_its_help() -> None:
    assert len(COMMANDS) >= 15 and ("import",) in COMMANDS and ("diary", "add") in COMMANDS
    assert re.search(r"^  --json\s+Print", _run("sources", "--help")[1], flags=re.M)
