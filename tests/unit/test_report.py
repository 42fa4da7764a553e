"""Every sentence of the report carries citation numbers that resolve to the reference list."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from ldncare.core.patient import Condition, MedicationUse, Patient
from ldncare.evidence.loader import load_evidence
from ldncare.planning import make_plan
from ldncare.render.html import render_html
from ldncare.render.markdown import render_markdown
from ldncare.render.report import build_report

AS_OF = date(2026, 11, 25)


def contract(meds: tuple[MedicationUse, ...] = ()) -> dict[str, Any]:
    patient = Patient(
        id="r1",
        name="<script>alert(1)</script>",
        birth_date=date(1980, 1, 1),
        sex="female",
        conditions=(Condition(display="Pudendal neuralgia"),),
        medications=meds,
    )
    return make_plan(patient, as_of=AS_OF).to_contract(load_evidence())


@pytest.mark.parametrize("meds", [(), (MedicationUse(name="tramadol 50 mg tablet"),)])
def test_every_sentence_cites_and_every_number_resolves(meds: tuple[MedicationUse, ...]) -> None:
    c = contract(meds)
    report = build_report(c)
    reference_numbers = {n for n, _ in report.references}
    assert reference_numbers == set(range(1, len(report.references) + 1))
    for section in report.sections:
        for sentence in section.sentences:
            assert sentence.numbers, f"{section.title}: uncited sentence {sentence.text!r}"
            assert set(sentence.numbers) <= reference_numbers
    cited = {n for s in report.sections for x in s.sentences for n in x.numbers}
    cited |= set(report.schedule_numbers)
    assert cited == reference_numbers, "no reference is listed without being cited"


def test_markdown_citation_markers_resolve() -> None:
    md = render_markdown(contract())
    refs = {int(n) for n in re.findall(r"^(\d+)\. ", md, flags=re.MULTILINE)}
    for group in re.findall(r"\[([\d, ]+)\]", md):
        assert {int(n) for n in group.split(",")} <= refs


def test_html_escapes_patient_supplied_text() -> None:
    html = render_html(contract())
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_first_key_consideration_names_the_strongest_recent_source_and_directness() -> None:
    c = contract()
    first = c["guidance"]["key_considerations"][0]
    sources = {s["id"]: s for s in c["citations"]}
    years = [sources[cid]["year"] for cid in first["citations"]]
    assert str(max(years)) in first["text"]
    assert "extrapolated" in first["text"] or "not direct" in first["text"]


def test_medicine_already_taken_reads_as_current_not_a_new_start() -> None:
    """Issue 14: venlafaxine on record was shown 'preferred'; the report now says it is
    already taken and what to do, and an avoided SNRI does not say 'may treat both'."""
    c = contract((MedicationUse(name="Venlafaxine 75 MG", dose_text="75 mg once daily"),))
    md = render_markdown(c)
    assert "already taken, 75 mg/day" in md
    assert "Venlafaxine (extended release) — preferred" not in md
    assert "Duloxetine — avoid" in md
    report = build_report(c)
    options = next(s for s in report.sections if s.title == "Alternatives and add-ons")
    dulox = next(x for x in options.sentences if x.label and x.label.startswith("Duloxetine"))
    assert "may treat both" not in dulox.text
