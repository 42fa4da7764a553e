"""``ldncare import`` as an integrator meets it (review L1): ``python -m ldncare``, a
``--workers`` below 1, the summary's counts, a truncated ``.gz`` file's exit status, and one
NDJSON file given where its export folder is meant."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ldncare.cli import EXIT_FAILED, EXIT_INVALID, EXIT_PARTIAL, app

SRC = Path(__file__).resolve().parents[2] / "src"


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01"}


def _opioid_by_unknown_reference(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": f"mr-{pid}",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2026-11-01",
        "medicationReference": {"reference": "Medication/missing"},
    }


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("LDNCARE_DATABASE_URL", url)
    return url


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _export(folder: Path, patients: list[str]) -> Path:
    folder.mkdir(parents=True)
    text = "".join(json.dumps(_patient(p)) + "\n" for p in patients)
    (folder / "Patient.ndjson").write_text(text, encoding="utf-8")
    return folder


def test_python_dash_m_ldncare_runs_the_command_line(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-m", "ldncare", "import", "--help"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Exit status" in done.stdout and "--workers" in done.stdout


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_is_refused_naming_the_option(
    tmp_path: Path, store: str, workers: str
) -> None:
    export = _export(tmp_path / "export", ["a"])
    code, _, err = _run("import", "--workers", workers, str(export))
    assert code == EXIT_INVALID
    assert "--workers" in err and "greater than or equal to 1" in err


def test_four_patients_read_and_three_refused_reports_four_read_and_one_imported(
    tmp_path: Path, store: str
) -> None:
    """Three of four pudendal-neuralgia patients have an active order for a medicine that
    cannot be identified (``Medication/missing``): they are skipped, and the summary says the
    import read 4 patients and imported 1."""
    export = _export(tmp_path / "export", ["r0", "r1", "r2", "r3"])
    orders = [_opioid_by_unknown_reference(p) for p in ("r1", "r2", "r3")]
    (export / "MedicationRequest.ndjson").write_text(
        "".join(json.dumps(o) + "\n" for o in orders), encoding="utf-8"
    )
    code, _, err = _run("import", str(export))
    assert code == EXIT_PARTIAL
    assert "3 patients skipped" in err and "(4 patients read, 1 imported)" in err


def test_a_truncated_gzip_file_exits_1_as_a_file_that_cannot_be_read(
    tmp_path: Path, store: str
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    data = gzip.compress(
        b"".join(json.dumps(_patient(f"p{i}")).encode() + b"\n" for i in range(200))
    )
    (folder / "Patient.ndjson.gz").write_bytes(data[: len(data) // 2])
    code, _, err = _run("import", str(folder))
    assert code == EXIT_FAILED == 1
    assert "Patient.ndjson.gz" in err and "truncated" in err and "nothing was imported" in err


@pytest.mark.parametrize("name", ["Patient.ndjson", "Patient.ndjson.gz", "Observation_2.jsonl"])
def test_one_ndjson_file_of_an_export_says_to_pass_the_folder(
    tmp_path: Path, store: str, name: str
) -> None:
    export = _export(tmp_path / "exp200", ["a", "b"])
    given = export / name
    if name != "Patient.ndjson":
        given.write_bytes((export / "Patient.ndjson").read_bytes())
    code, _, err = _run("import", str(given))
    assert code == EXIT_INVALID
    assert "pass the export folder" in err and str(export) in err
    assert "is not JSON" not in err


def test_ndjson_lines_in_a_json_file_are_recognised_as_ndjson(tmp_path: Path, store: str) -> None:
    export = _export(tmp_path / "exp", ["a", "b"])
    renamed = tmp_path / "patients.json"
    renamed.write_bytes((export / "Patient.ndjson").read_bytes())
    code, _, err = _run("import", str(renamed))
    assert code == EXIT_INVALID
    assert "looks like NDJSON" in err and "folder" in err


def _record_staging(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ``dir`` each staging folder is created in (the folder itself is gone at the end)."""
    from ldncare.fhir import ndjson

    seen: list[Any] = []
    real = ndjson.tempfile.mkdtemp

    def mkdtemp(*args: Any, **kwargs: Any) -> str:
        seen.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ndjson.tempfile, "mkdtemp", mkdtemp)
    return seen


@pytest.mark.parametrize("how", ["option", "env"])
@pytest.mark.parametrize("extra", [[], ["--part", "0/1"]], ids=["one-process", "part"])
def test_the_staging_folder_can_be_chosen_by_option_or_environment(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch, how: str, extra: list[str]
) -> None:
    export = _export(tmp_path / "export", ["a", "b"])
    staging = tmp_path / "big-disk"
    staging.mkdir()
    seen = _record_staging(monkeypatch)
    args = ["import", *extra, str(export)]
    if how == "option":
        args[1:1] = ["--staging-dir", str(staging)]
    else:
        monkeypatch.setenv("LDNCARE_STAGING_DIR", str(staging))
    code, _, err = _run(*args)
    assert code == 0, err
    assert seen and all(Path(d).is_relative_to(staging) for d in seen)
    assert list(staging.iterdir()) == [], "the staging files were left behind"


def test_a_staging_folder_that_does_not_exist_is_refused_before_reading(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = _export(tmp_path / "export", ["a"])
    seen = _record_staging(monkeypatch)
    monkeypatch.setenv("LDNCARE_STAGING_DIR", str(tmp_path / "nowhere"))
    code, _, err = _run("import", str(export))
    assert code == EXIT_INVALID
    assert "LDNCARE_STAGING_DIR" in err and "nowhere" in err and "not an existing folder" in err
    assert seen == []


def test_three_machines_sharing_an_export_each_report_their_part_and_together_cover_it(
    tmp_path: Path, store: str
) -> None:
    """What docs/SCALE.md says to check after a shared import: every part I/M ran with the
    same M and bucket total, and the parts' buckets and patients add up to the export's."""
    export = _export(tmp_path / "export", [f"p{i}" for i in range(30)])
    reports = []
    for i in range(3):
        code, out, err = _run("import", "--json", "--part", f"{i}/3", str(export))
        assert code == 0, err
        reports.append(json.loads(out))
    parts = [r["parallel"]["part"] for r in reports]
    assert parts == ["0/3", "1/3", "2/3"]
    totals = {r["parallel"]["buckets"]["total"] for r in reports}
    assert len(totals) == 1
    assert sum(r["parallel"]["buckets"]["imported"] for r in reports) == totals.pop()
    assert sum(r["patients"]["imported"] for r in reports) == 30
    code, out, _ = _run("import", "--part", "1/3", str(export))
    assert code == 0 and "1/3: buckets b % 3 == 1" in out
