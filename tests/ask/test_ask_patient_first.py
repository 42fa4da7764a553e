"""``ldncare ask --patient``: the patient's own result opens the answer (review round 2).

A clinician asking about one patient must read what the plan says about *that* patient before
any general text: "not recommended" for a patient on tramadol before "start at 1 to 2 mg"
(a30), the plan's "above the kidney maximum: reduce" for a gabapentin question (a40), and the
verdict on each medicine when asked which to use (a64). The same order in Markdown, JSON and
the web page (tests/web/test_ask_page.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from ldncare.render.answer_markdown import render_answer_markdown

PATIENTS = Path(__file__).resolve().parents[1] / "vignettes" / "patients"
AS_OF = date(2026, 12, 4)


def plan_of(name: str) -> dict[str, Any]:
    contract: dict[str, Any] = make_plan(load_patient(PATIENTS / name), as_of=AS_OF).to_contract(
        load_evidence()
    )
    return contract


def ask(question: str, patient: str) -> dict[str, Any]:
    answer: dict[str, Any] = answer_question(question, plan_contract=plan_of(patient)).to_contract()
    return answer


def test_patient_on_tramadol_asking_to_start_ldn_reads_not_recommended_before_any_dosing() -> None:
    plan = plan_of("pn-on-tramadol.yaml")
    answer = answer_question("Can I start LDN for this patient?", plan_contract=plan)
    sections = list(answer.to_contract()["sections"])
    assert sections[0] == "patient_context"
    first = answer.sections["patient_context"][0]
    assert first.statement == "ldn.opioid.active" and first.severity == "contraindication"
    text = render_answer_markdown(answer)
    verdict = text.index("LDN screening for this patient: **not recommended**")
    assert verdict < text.index("## From the Guidelines")
    # The general answer does not lead with how to start LDN for a patient who may not start it
    # (review rounds 5 and 6): what stands in the way follows instead.
    assert "1 to 2 mg" not in text
    assert "7 to 10 days" in text


def test_gabapentin_above_the_kidney_maximum_opens_a_question_about_its_dose() -> None:
    # CrCl about 8 mL/min on gabapentin 900 mg a day: the plan says reduce; so must the answer.
    answer = ask("Is this patient's gabapentin dose appropriate?", "gabapentin-900-crcl-8.yaml")
    assert next(iter(answer["sections"])) == "patient_medicines"
    first = answer["sections"]["patient_medicines"][0]
    assert first["statement"] == "option.current.above_renal_max", first
    assert "reduce the dose" in first["text"] and first["severity"] == "warning"
    assert first["basis"] == "rule" and first["citations"]


def test_which_medicine_for_a_74_year_old_with_af_on_amitriptyline_gives_each_verdict() -> None:
    plan = plan_of("pn-amitriptyline-age-74-af-cyp2d6-poor.yaml")
    answer = answer_question(
        "Which neuropathic pain medicine should she use?", plan_contract=plan
    ).to_contract()
    lines = answer["sections"]["patient_medicines"]
    texts = [s["text"] for s in lines]
    # Every option of the plan is named, each verdict once, the current medicine first.
    for option in plan["options"]:
        assert sum(f"{option['name']} (" in t for t in texts) == 1, option["name"]
    assert "Amitriptyline (already taken" in texts[0]
    # Why amitriptyline should be switched: AF (conduction), Beers at 65+, CYP2D6 poor (CPIC),
    # then what to do about the medicine already taken.
    rules = [s["statement"] for s in lines[:4]]
    assert set(rules[:3]) == {
        "option.tca.conduction",
        "option.tca.age65",
        "option.cpic.cyp2d6_poor",
    }
    assert rules[3] == "option.current.taking_conflict"
    assert all(s["severity"] == "warning" for s in lines[:3])


def test_a_question_the_evidence_base_does_not_cover_still_shows_the_patients_verdict() -> None:
    # "Can he drive on LDN?" is not covered; the patient on tramadol must still read that LDN
    # is not recommended (pharmacist review round 2).
    plan = plan_of("pn-on-tramadol.yaml")
    answer = answer_question("Can I drive a car on LDN?", plan_contract=plan)
    assert not answer.covered
    assert answer.sections["patient_context"][0].statement == "ldn.opioid.active"
    text = render_answer_markdown(answer)
    assert "not covered" in text and "LDN screening for this patient: **not recommended**" in text
    cited = {r.source.id for r in answer.references}
    assert "label_naltrexone" in cited


def test_a_contraindication_to_ldn_stays_first_when_the_question_names_another_medicine() -> None:
    answer = ask("Is the sertraline dose alright for her?", "pn-on-tramadol.yaml")
    assert next(iter(answer["sections"])) == "patient_context"


def test_every_reason_against_a_medicine_to_avoid_is_shown_when_asked_which_to_use() -> None:
    plan = plan_of("pn-amitriptyline-age-74-af-cyp2d6-poor.yaml")
    answer = answer_question("What else could she take?", plan_contract=plan).to_contract()
    shown = {s["statement"] for s in answer["sections"]["patient_medicines"]}
    for option in plan["options"]:
        if option["suitability"] in {"avoid", "caution", "current"}:
            specific = {r["rule"] for r in option["reasons"]} - {
                "option.first_line",
                "option.second_line",
            }
            assert specific <= shown, option["name"]


def test_a_question_without_a_patient_has_no_patient_sections() -> None:
    answer = answer_question("Can I start LDN?").to_contract()
    assert "patient_context" not in answer["sections"]
    assert "patient_medicines" not in answer["sections"]


@settings(max_examples=25, deadline=None)
@given(
    patient=st.sampled_from(
        [
            "pn-on-tramadol.yaml",
            "gabapentin-900-crcl-8.yaml",
            "pn-amitriptyline-age-74-af-cyp2d6-poor.yaml",
            "pn-pregnant.yaml",
            "pn-tramadol-400-crcl-21-age-80.yaml",
        ]
    ),
    question=st.sampled_from(
        [
            "Should she start low-dose naltrexone?",
            "What dose of LDN for this patient?",
            "Is the gabapentin dose right for him?",
            "What else could this patient take instead of LDN?",
            "side effects of ldn",
        ]
    ),
)
def test_every_contraindication_in_the_plan_is_shown_before_the_general_answer(
    patient: str, question: str
) -> None:
    plan = plan_of(patient)
    answer = answer_question(question, plan_contract=plan)
    if not answer.covered:
        return
    names = list(answer.sections)
    general = names.index("from_the_guidelines")
    assert names.index("patient_context") < general
    shown = [s.statement for s in answer.sections["patient_context"]]
    contraindications = [
        f["rule"] for f in plan["ldn"]["findings"] if f["severity"] == "contraindication"
    ]
    assert shown[: len(contraindications)] == contraindications
