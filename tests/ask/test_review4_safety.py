"""Review round 4 (an outside clinical pharmacist, 60 unseen questions): the unsafe and wrong
answers it found, each held here by questions of our own wording."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ldncare.ask import answer_question
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan

PATIENTS = Path(__file__).resolve().parents[1] / "vignettes" / "patients"


def _text(question: str, plan: dict[str, Any] | None = None) -> tuple[str, str]:
    answer = answer_question(question, plan_contract=plan)
    sentences = [s.text for s in answer.sentences()]
    return sentences[0], " ".join(sentences)


@pytest.mark.parametrize(
    "question",
    [
        "If I'm on LDN and get hurt in an accident, can the paramedics give me opioid painkillers?",
        "I take low dose naltrexone - what happens if I need pain relief in an emergency?",
        "Can someone on naltrexone get morphine in the emergency room after a fracture?",
    ],
)
def test_emergency_pain_relief_is_possible_with_monitoring_and_names_the_alternatives(
    question: str,
) -> None:
    # q39: "No: naltrexone must not be taken with opioid painkillers" could have pain relief
    # withheld; the label's emergency advice is what is needed.
    first, text = _text(question)
    assert not first.startswith("No")
    assert "regional anaesthesia" in text
    assert "fatal overdose" in text
    assert "13 hours" in text


@pytest.mark.parametrize(
    "question",
    [
        "What is the dose of naltrexone for alcohol use disorder?",
        "how much naltrexone do you take for alcoholism",
        "naltrexone dose to stop drinking?",
    ],
)
def test_the_dose_for_alcohol_dependence_is_the_labels_50_mg_not_the_ldn_dose(
    question: str,
) -> None:
    # q46: the LDN titration was given for alcohol use disorder.
    first, text = _text(question)
    assert "50 mg once a day" in first
    assert "1 to 2 mg at night" not in text


@pytest.mark.parametrize(
    "question",
    [
        "How long after stopping oxycodone can I start LDN?",
        "how soon after my last tramadol can I take naltrexone",
        "How many days after stopping codeine before LDN?",
    ],
)
def test_how_long_after_an_opioid_leads_with_the_opioid_free_interval(question: str) -> None:
    # q15: a "how long" question opened with a canned "No:".
    first, _ = _text(question)
    assert "7 to 10 days" in first
    assert not first.startswith("No")


@pytest.mark.parametrize(
    "question",
    [
        "Does gabapentin interact with low-dose naltrexone?",
        "any interaction between LDN and pregabalin",
    ],
)
def test_an_interaction_question_hears_that_none_is_known_not_a_bare_yes(question: str) -> None:
    # q23: "Yes, with caution" read as "yes, they interact".
    first, _ = _text(question)
    assert "no interaction is known" in first


def test_methadone_stopped_ten_days_ago_is_not_yet_never_possibly() -> None:
    # q50: "Possibly, with caution" opened the answer while the start was put off to after the
    # opioid-free interval: a skim reader would have started LDN that day.
    plan = make_plan(
        load_patient(PATIENTS / "pn-methadone-stopped-10-days.yaml"), as_of=date(2026, 12, 4)
    ).to_contract(load_evidence())
    answer = answer_question("Is it safe to start low-dose naltrexone now?", plan_contract=plan)
    first = answer.sections["patient_context"][0]
    assert first.text.startswith("Not yet for this patient")
    assert "2026-12-08" in first.text
    assert first.severity == "contraindication"
    assert "Possibly" not in " ".join(s.text for s in answer.sentences())


def _plan(name: str) -> dict[str, Any]:
    contract: dict[str, Any] = make_plan(
        load_patient(PATIENTS / name), as_of=date(2026, 12, 4)
    ).to_contract(load_evidence())
    return contract


@pytest.mark.parametrize(
    "question",
    [
        "What can I offer her for pudendal neuralgia?",
        "what can I give her for PN",
        "What helps PN?",
    ],
)
def test_what_to_offer_a_pregnant_patient_gives_each_options_pregnancy_verdict(
    question: str,
) -> None:
    # q52: a treatment question read as "what is PN?" (definition, Nantes criteria) and the
    # first-line medicines listed with no pregnancy caution.
    answer = answer_question(question, plan_contract=_plan("pn-pregnant.yaml"))
    medicines = " ".join(s.text for s in answer.sections["patient_medicines"])
    for drug in ("Pregabalin", "Duloxetine", "Amitriptyline", "Gabapentin"):
        assert f"{drug}: Pregnant" in medicines or f"Pregnant: human data for {drug}" in medicines
    text = " ".join(s.text for s in answer.sentences())
    assert "Nantes criteria require" not in text
    assert "pelvic floor physical therapy" in text


def test_a_patient_on_an_opioid_hears_the_route_to_ldn_not_to_choose_the_opioid() -> None:
    # q49: "not recommended" with no way forward, and "Choose it instead of LDN" read as advice
    # to choose tramadol.
    answer = answer_question(
        "Can I start LDN for this patient?", plan_contract=_plan("pn-on-tramadol.yaml")
    )
    first = answer.sections["patient_context"][0].text
    assert first.startswith("No, not as things stand")
    assert "7 to 10 days" in first
    assert "Choose it instead" not in " ".join(s.text for s in answer.sentences())


# --- review round 5 (the same pharmacist, 40 more unseen questions) ---


@pytest.mark.parametrize(
    "question",
    [
        "can i tak naltrexone with my oxy pills",
        "Is LDN ok with Percocet?",
        "I drink kratom tea every day for my pelvic pain. Can I add LDN?",
    ],
)
def test_street_and_brand_opioids_with_ldn_are_answered_no(question: str) -> None:
    # n19: "oxy" was not an opioid ("Not known"); n03: "drink" refused a kratom question.
    answer = answer_question(question)
    assert answer.covered
    assert answer.sentences()[0].text.startswith("No: naltrexone must not be taken with opioid")


def test_an_opioid_taken_on_ldn_hears_the_fatal_overdose_warning() -> None:
    # n04: a patient on LDN who took old oxycodone tablets was not told not to take more.
    _, text = _text(
        "A patient on LDN took her old oxycodone tablets for a flare. What happens and what "
        "should she do?"
    )
    assert "overcome its opioid blockade" in text and "fatal overdose" in text


def test_a_pregnancy_told_before_the_question_decides_the_answer() -> None:
    # n12: "I'm pregnant and have been on LDN for 6 months. Should I stop?" got trial length.
    first, text = _text(
        "I just found out I'm pregnant and I've been on LDN for 6 months. Should I stop it "
        "straight away?"
    )
    assert "pregnancy" in first
    assert "adequate trial is about 2 to 3 months" not in text


@pytest.mark.parametrize(
    "question",
    ["Is LDN safe in someone with liver disease?", "Does LDN need a dose adjustment in CKD?"],
)
def test_an_organ_question_carries_no_opioid_rules(question: str) -> None:
    # q16 q17: opioid contraindication and lost tolerance padded kidney and liver answers.
    _, text = _text(question)
    assert "must not be given to anyone taking opioid" not in text
    assert "tolerance to opioids is reduced" not in text


def test_a_deferred_start_is_headed_not_yet() -> None:
    # q50 n39: "eligible with cautions" above a contraindication read as "start today".
    answer = answer_question(
        "When can she start LDN?", plan_contract=_plan("pn-methadone-stopped-10-days.yaml")
    )
    assert answer.start_deferred
    assert answer.eligibility_headline is not None
    assert "not yet" in answer.eligibility_headline
    assert answer.to_contract()["start_deferred"] is True
    plain = answer_question("When can she start LDN?", plan_contract=_plan("pn-pregnant.yaml"))
    assert not plain.start_deferred
    assert plain.eligibility_headline == "eligible with cautions"


@pytest.mark.parametrize(
    "question",
    [
        "What symptoms on LDN mean I should stop it and get urgent help?",
        "red flags on low dose naltrexone?",
        "When should I worry and call a doctor while taking LDN?",
    ],
)
def test_when_to_stop_and_seek_help_is_answered_from_the_label(question: str) -> None:
    # n17: refused as "how to stop or taper LDN".
    answer = answer_question(question)
    assert answer.covered and not answer.not_covered_points
    text = " ".join(s.text for s in answer.sentences())
    assert "seek medical attention" in text and "acute hepatitis" in text
    assert "suicidal thoughts" in text


def test_a_fentanyl_patch_is_not_answered_with_tramadols_verdict() -> None:
    # n25: "her fentanyl patch" named the opioid class, which stood for its one monograph,
    # tramadol: "No, not for this patient for this patient: NICE advises tramadol ...".
    answer = answer_question(
        "She wants to swap her fentanyl patch for LDN. How do we do that safely?",
        plan_contract=_plan("pn-fentanyl-patch.yaml"),
    )
    text = " ".join(s.text for s in answer.sentences())
    assert "tramadol only as acute rescue" not in text
    assert "for this patient for this patient" not in text
    assert "7 to 10 days" in text


# --- review round 6 ---


@pytest.mark.parametrize(
    "question",
    [
        "My patient is booked for a C-section next week. Should she stop LDN?",
        "I'm having a hysterectomy in March, what do I do about my LDN?",
        "knee replacement next month - stop low dose naltrexone?",
    ],
)
def test_an_operation_named_by_its_procedure_is_a_surgery_question(question: str) -> None:
    # r6: a caesarean was answered with the trial length, a hysterectomy refused.
    answer = answer_question(question)
    assert answer.covered
    text = " ".join(s.text for s in answer.sentences())
    assert "stopped before elective surgery" in text
    assert "adequate trial is about 2 to 3 months" not in text


def test_opioids_named_with_ldn_do_not_stand_for_tramadols_warnings() -> None:
    # r6 m11: "never taken opioids" was answered with tramadol's boxed warning.
    _, text = _text("Will LDN make me go into withdrawal if I've never taken opioids?")
    assert "Tramadol carries a boxed warning" not in text
    assert "withdrawal" in text


@pytest.mark.parametrize(
    "patient", ["pn-on-tramadol.yaml", "pn-methadone-stopped-10-days.yaml", "pn-age-15.yaml"]
)
def test_a_patient_who_may_not_start_ldn_is_not_given_the_start_plan(patient: str) -> None:
    # r5/r6: q49 q50 n39 m23: the general section led with "start at 1 to 2 mg at night".
    answer = answer_question("Can I start LDN for this patient?", plan_contract=_plan(patient))
    general = " ".join(
        s.text
        for name in ("from_the_guidelines", "key_considerations", "treatment_approach")
        for s in answer.sections.get(name, ())
    )
    assert "start at 1 to 2 mg" not in general
    assert general


def test_naloxone_is_said_to_be_not_covered_beside_the_opioid_answer() -> None:
    # r5 n07: answered only "Not without checking first" (about LDN), which read as discouraging
    # naloxone; naloxone is not in the base, and the answer now says so above the LDN part.
    answer = answer_question(
        "My patient has just come off methadone and wants LDN. Should she carry naloxone?"
    )
    assert any("naloxone" in p for p in answer.not_covered_points)
    text = " ".join(s.text for s in answer.sentences())
    assert "2 weeks" in text


def test_ldn_for_depression_is_said_to_be_not_covered() -> None:
    # r5 n22: "can LDN treat depression?" was answered with duloxetine and venlafaxine.
    first, text = _text("Can LDN treat depression?")
    assert first.startswith("Not known") and "treatment for depression" in first
    assert "duloxetine or venlafaxine can treat both" not in text


def test_opioid_withdrawal_named_as_a_reaction_is_not_an_opioid_taken() -> None:
    # r5 n05: "what does precipitated opioid withdrawal look like?" opened "No: naltrexone must
    # not be taken with opioid painkillers", as if an opioid had been named.
    first, _ = _text(
        "What does precipitated opioid withdrawal look like if LDN is started too early?"
    )
    assert not first.startswith("No:")
    assert "precipitate" in first


@pytest.mark.parametrize(
    ("question", "label"),
    [
        ("Does LDN help psoriasis?", "psoriasis"),
        ("LDN for ulcerative colitis?", "ulcerative colitis"),
        ("can low dose naltrexone treat my IBS", "irritable bowel syndrome"),
    ],
)
def test_conditions_ldn_is_asked_about_outside_the_base_are_not_covered(
    question: str, label: str
) -> None:
    # r5 n23 (ulcerative colitis answered as Crohn's disease), r6 m16 (psoriasis got the PN
    # overview).
    answer = answer_question(question)
    assert not answer.covered
    assert any(label in p for p in answer.not_covered_points)


@pytest.mark.parametrize(
    "question",
    ["Can I take diazepam with LDN?", "Does gabapentin interact with low-dose naltrexone?"],
)
def test_narrow_topic_statements_do_not_pad_other_interaction_answers(question: str) -> None:
    # r6 m08 m13 m21 m24: the thyroid and immunosuppressant statements padded every LDN
    # interaction answer.
    _, text = _text(question)
    assert "immunosuppressant" not in text
    assert "thyroid" not in text


def test_an_immunosuppressant_question_still_gets_its_statement() -> None:
    _, text = _text("Is LDN safe with methotrexate or other immunosuppressants?")
    assert "immunosuppressant" in text


def test_painkillers_in_a_patient_question_do_not_invent_tramadol() -> None:
    # r7 r25: "is off all painkillers now" listed tramadol under "This patient's medicines" for a
    # patient who takes none ("painkillers" stood for the opioid class, i.e. tramadol).
    answer = answer_question(
        "She had her operation four days ago and is off all painkillers now. Can she begin LDN?",
        plan_contract=_plan("pn-surgery-four-days-ago.yaml"),
    )
    assert "patient_medicines" not in answer.sections
    assert "7 to 10 days" in " ".join(s.text for s in answer.sentences())
