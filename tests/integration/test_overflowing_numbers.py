"""Issue #19 item 10: a number that overflows a float (``1e999``, ``-1e999``) is refused like
NaN and Infinity by every JSON reader ldncare owns -- the patient file / Bundle reader of
``plan`` and ``import`` and the Bulk NDJSON importer -- instead of an eGFR of ``-inf`` or a plan
saying "eligible"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.json_input import JsonProblem, loads_strict
from tests.integration.test_fhir_json_strict import _bundle_text

runner = CliRunner()


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1.5E+400"])
def test_woman_with_pudendal_neuralgia_whose_egfr_overflows_gets_no_plan(
    tmp_path: Path, number: str
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(_bundle_text(number))
    result = runner.invoke(app, ["plan", str(path), "--as-of", "2026-11-25"])
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "overflows to infinity" in line
    assert "inf" not in result.stdout


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_importing_a_bundle_whose_egfr_overflows_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: str
) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    path = tmp_path / "bundle.json"
    path.write_text(_bundle_text(number))
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 2
    assert "overflows to infinity" in result.stderr
    listed = runner.invoke(app, ["patient", "list"])
    assert "pn-kidney" not in listed.stdout


def test_bulk_export_with_an_overflowing_egfr_reports_the_line_and_keeps_no_infinity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    bundle = json.loads(_bundle_text('"X"'))
    patient, egfr = (e["resource"] for e in bundle["entry"])
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_text(json.dumps(patient) + "\n")
    (export / "Observation.ndjson").write_text(json.dumps(egfr).replace('"X"', "-1e999") + "\n")
    result = runner.invoke(app, ["import", "--json", str(export)])
    # The patient's only other line is unreadable: she is not imported at all (exit 1).
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["patients"]["imported"] == 0
    (line,) = (e for e in report["errors"] if e["where"] == "Observation.ndjson:1")
    assert "infinity" in line["message"]


@given(st.integers(min_value=309, max_value=100_000), st.sampled_from(["", "-"]))
def test_no_overflowing_exponent_reaches_a_reader_as_a_number(exponent: int, sign: str) -> None:
    with pytest.raises(JsonProblem, match="overflows to infinity"):
        loads_strict(f'{{"value": {sign}1e{exponent}}}')


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_still_reads_back(value: float) -> None:
    assert loads_strict(json.dumps({"value": value})) == {"value": value}
