"""Wherever a source is shown, its population, design, size and year (issue 22 item 4), so a
reader sees at a glance that the LDN evidence for pudendal neuralgia is indirect."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ldncare.ask import answer_question
from ldncare.cli import app
from ldncare.errors import EvidenceError
from ldncare.evidence.loader import data_root, load_evidence, load_evidence_from
from ldncare.evidence.models import DESIGN_TEXT, POPULATION_TEXT, fit_text
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from ldncare.render.answer_markdown import render_answer_markdown
from ldncare.render.markdown import render_markdown

HERE = Path(__file__).parent / "patients"
DATA = Path(str(data_root()))
runner = CliRunner()


def pn_plan() -> dict[str, Any]:
    patient = load_patient(HERE / "pn-woman-no-meds.yaml")
    return make_plan(patient, as_of=date(2026, 11, 25)).to_contract(load_evidence())


def test_every_reference_in_a_pn_plan_report_shows_its_population_design_and_year() -> None:
    contract = pn_plan()
    ev = load_evidence()
    md = render_markdown(contract)
    refs = md.split("## References", 1)[1]
    for c in contract["citations"]:
        src = ev.sources[c["id"]]
        assert c["population"] == src.population
        line = next(x for x in refs.splitlines() if x.startswith(f"{c['number']}. "))
        assert line.endswith(f"[{src.fit_text()}]")
        assert f"; {src.year}]" in line


def test_no_ldn_efficacy_source_shown_in_a_pn_plan_is_from_pn_patients() -> None:
    # The point of showing the population: every LDN efficacy source is from another condition.
    contract = pn_plan()
    ev = load_evidence()
    shown = [ev.sources[c["id"]] for c in contract["citations"]]
    efficacy = [s for s in shown if "ldn_efficacy" in s.evidence_for]
    assert efficacy
    assert all(s.population != "pudendal_neuralgia" for s in efficacy)
    md = render_markdown(contract)
    assert "population: fibromyalgia" in md


def test_answer_on_whether_ldn_works_shows_the_2025_meta_analysis_as_mixed_chronic_pain() -> None:
    answer = answer_question("Does LDN work for pudendal neuralgia?")
    md = render_answer_markdown(answer)
    hegde = next(r for r in answer.to_contract()["references"] if r["id"] == "hegde2025")
    assert hegde["population"] == "chronic_pain"
    assert hegde["size"] == "7 RCTs"
    assert re.search(
        r"Hegde NC.*\[population: mixed chronic pain; systematic review, 7 RCTs; 2025\]", md
    )


def test_sources_cli_lists_the_fibromyalgia_trial_with_its_size() -> None:
    result = runner.invoke(app, ["sources"])
    assert result.exit_code == 0
    line = next(x for x in result.stdout.splitlines() if x.startswith("[younger2013]"))
    assert line.endswith("[population: fibromyalgia; randomised trial, 31 women; 2013]")


def test_plan_stored_before_the_fit_fields_renders_plain_references() -> None:
    contract = pn_plan()
    for c in contract["citations"]:
        del c["population"], c["size"]
    md = render_markdown(contract)
    assert "population:" not in md


def test_an_empty_size_stops_the_load(tmp_path: Path) -> None:
    root = Path(shutil.copytree(DATA, tmp_path / "data"))
    path = root / "sources.yaml"
    entries = yaml.safe_load(path.read_text("utf-8"))
    next(e for e in entries if e["id"] == "younger2013")["size"] = ""
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), "utf-8")
    with pytest.raises(EvidenceError, match=r"sources\.yaml\[\d+\]: size: "):
        load_evidence_from(root)


@given(
    population=st.sampled_from(sorted(POPULATION_TEXT)),
    design=st.sampled_from(sorted(DESIGN_TEXT)),
    size=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    year=st.integers(min_value=1900, max_value=2100),
)
def test_fit_always_names_population_design_and_year_and_size_when_known(
    population: str, design: str, size: str | None, year: int
) -> None:
    text = fit_text(population, design, size, year)
    assert text.startswith(f"population: {POPULATION_TEXT[population]}; {DESIGN_TEXT[design]}")
    assert text.endswith(f"; {year}")
    assert (size is not None and f", {size};" in text) or size is None
