"""The classes of the independent review (2026-12-04) as safety invariants over generated
questions (hypothesis) and named cases: kidney/liver questions lead with the adjusted content,
openings answer what was asked, out-of-scope topics are refused, the best-source line is about
the point asked."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question, ask_index
from ldncare.ask.ask import understand_question

LDN = ["LDN", "low dose naltrexone", "naltrexone", "low dose naltrexon"]
GABAPENTINOIDS = ["gabapentin", "pregabalin", "Neurontin", "Lyrica"]
KIDNEY = [
    "in kidney disease",
    "with poor kidney function",
    "for a patient on dialysis",
    "with an eGFR of 25",
    "in renal impairment",
    "if my kidneys are bad",
]
DOSE_ASKS = ["{drug} dose {organ}", "how much {drug} {organ}?", "{drug} dosing {organ}"]
NON_OPIOIDS = ["sertraline", "my SSRI", "an antihistamine", "levetiracetam", "omeprazole"]
OFF_TOPIC = [
    "How much does {ldn} cost?",
    "Is {ldn} covered by insurance?",
    "Can I drink alcohol on {ldn}?",
    "Is CBD better than {ldn} for pudendal neuralgia?",
    "cannabis with {ldn}?",
]

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lead(question: str) -> str:
    answer = answer_question(question)
    assert answer.covered, question
    return answer.sections["from_the_guidelines"][0].statement


@_SETTINGS
@given(st.sampled_from(GABAPENTINOIDS), st.sampled_from(KIDNEY), st.sampled_from(DOSE_ASKS))
def test_a_gabapentinoid_kidney_dose_question_leads_with_the_renal_table_never_the_titration(
    drug: str, organ: str, ask: str
) -> None:
    question = ask.format(drug=drug, organ=organ)
    answer = answer_question(question)
    ids = answer.statement_ids()
    assert ids[0].endswith(".renal"), (question, ids)
    assert not any(i.endswith(".dosing") for i in ids), (question, ids)


@_SETTINGS
@given(st.sampled_from(LDN), st.sampled_from(KIDNEY))
def test_an_ldn_kidney_question_keeps_to_the_kidney_and_gives_no_usual_titration(
    ldn: str, organ: str
) -> None:
    question = f"Can I take {ldn} {organ}?"
    ids = answer_question(question).statement_ids()
    # (the cited kidney opening, or the kidney statement under a derived one)
    assert ids[0] in {"answer.ldn.kidney", "ldn_safety.kidney"}, (question, ids)
    assert not any("liver" in i or "titration" in i or i.startswith("pn.") for i in ids), ids


@_SETTINGS
@given(st.sampled_from(LDN), st.sampled_from(NON_OPIOIDS))
def test_a_non_opioid_with_ldn_never_gets_the_opioid_no(ldn: str, other: str) -> None:
    answer = answer_question(f"Does {ldn} interact with {other}?")
    first = answer.sections["from_the_guidelines"][0].text if answer.covered else ""
    assert not first.startswith("No:"), first


@_SETTINGS
@given(st.sampled_from(LDN), st.sampled_from(OFF_TOPIC))
def test_cost_insurance_alcohol_and_cannabis_are_not_covered(ldn: str, ask: str) -> None:
    assert not answer_question(ask.format(ldn=ldn)).covered


@_SETTINGS
@given(
    st.sampled_from(LDN),
    st.sampled_from(["vivid dreams", "nightmares", "trouble sleeping", "insomnia"]),
)
def test_a_sleep_side_effect_question_never_opens_with_the_opioid_exception(
    ldn: str, effect: str
) -> None:
    answer = answer_question(f"I have {effect} on {ldn}, what should I do?")
    first = answer.sections["from_the_guidelines"][0].text
    assert not first.startswith("Mostly"), first
    assert "holding a step longer" in " ".join(s.text for s in answer.sentences())


def test_gabapentin_dose_in_kidney_disease_opens_with_crcl_bands() -> None:
    answer = answer_question("gabapentin dose in kidney disease")
    first = answer.sections["from_the_guidelines"][0].text
    assert first.startswith("Gabapentin dose by kidney function") and "CrCl" in first
    text = " ".join(s.text for s in answer.sentences())
    assert "increase by 300 mg every day" not in text


def test_liver_damage_on_ldn_names_the_high_dose_label_finding_not_kidney_guidance() -> None:
    answer = answer_question("Can LDN cause liver damage?")
    # Opens with the cited "it depends on the dose" (the high-dose finding), then the finding.
    assert _lead("Can LDN cause liver damage?") == "answer.ldn.liver_damage"
    assert "ldn_safety.liver.label" in answer.statement_ids()[:3]
    assert "kdigo2012" not in {r.source.id for r in answer.references}


def test_sertraline_with_ldn_opens_with_not_known_from_the_label() -> None:
    answer = answer_question("Does LDN interact with my SSRI sertraline?")
    first = answer.sections["from_the_guidelines"][0]
    assert first.statement == "answer.ldn.interactions_not_studied"
    assert first.text.startswith("Not known")


def test_morning_dosing_for_insomnia_says_no_trial_and_ask_the_prescriber() -> None:
    answer = answer_question("Should I take my LDN in the morning if I cant sleep?")
    first = answer.sections["from_the_guidelines"][0].text
    assert first.startswith("Not known") and "prescriber" in first


def test_misspelled_lay_question_about_sitting_pain_gets_the_ldn_overview() -> None:
    question = understand_question("Can low dose naltrexon help my sitting pain down there?")
    assert question.overview and {"ldn", "pn"} <= set(question.subjects)
    answer = answer_question("Can low dose naltrexon help my sitting pain down there?")
    assert answer.sections["from_the_guidelines"][0].text.startswith("It depends")


def test_amitriptyline_or_duloxetine_first_opens_with_what_it_depends_on() -> None:
    answer = answer_question("Should I try amitriptyline or duloxetine first for PN?")
    first = answer.sections["from_the_guidelines"][0].text
    assert first.startswith("It depends on the person")
    for factor in ("depression", "sleep", "65", "heart"):
        assert factor in first


def test_non_drug_question_lists_no_medicine() -> None:
    answer = answer_question("What non-drug treatments help pudendal neuralgia?")
    text = " ".join(s.text for s in answer.sentences()).lower()
    assert "duloxetine" not in text and "tricyclic" not in text
    assert "cushion" in text


def test_how_ldn_works_gives_the_mechanism_not_the_overview() -> None:
    answer = answer_question("How does low dose naltrexone work?")
    ids = answer.statement_ids()
    assert ids[0].startswith("ldn.mechanism")
    assert not any(i.startswith(("ldn.dose", "ldn.titration", "pn.")) for i in ids), ids


def test_surgery_answer_has_no_trial_length_padding() -> None:
    ids = answer_question("I have surgery next month, do I need to stop LDN?").statement_ids()
    assert ids[0] == "answer.ldn.surgery"
    assert not any(i.startswith(("ldn.trial", "ldn.response", "response.")) for i in ids), ids


def test_whether_ldn_helps_crps_is_not_covered_rather_than_answered_from_other_conditions() -> None:
    answer = answer_question("Does LDN help CRPS?")
    assert not answer.covered
    assert answer.sentences() == ()


def test_ldn_side_effects_asked_by_someone_with_crps_get_a_labelled_general_answer() -> None:
    answer = answer_question("What are the side effects of LDN for someone with CRPS?")
    assert answer.covered and answer.scope and "CRPS" in answer.scope
    text = " ".join(s.text for s in answer.sentences()).lower()
    assert "vivid dreams" in text
    assert "pudendal" not in text and "pelvic floor" not in text


def test_every_new_opening_is_a_cited_statement() -> None:
    by_id = ask_index().by_id
    for sid in (
        "answer.ldn.interactions_not_studied",
        "answer.ldn.sleep_timing",
        "answer.np.tca_or_snri",
        "answer.pn.nerve_block",
        "answer.pn.surgery",
        "drug_warnings.gabapentin.anaphylaxis",
    ):
        assert by_id[sid].citations, sid


@_SETTINGS
@given(
    st.sampled_from(LDN),
    st.sampled_from(
        ["Is {ldn} addictive?", "Is {ldn} habit forming?", "will i get hooked on {ldn}"]
    ),
)
def test_an_addiction_question_opens_no_from_the_label(ldn: str, ask: str) -> None:
    first = answer_question(ask.format(ldn=ldn)).sections["from_the_guidelines"][0]
    assert first.statement == "answer.ldn.dependence", first.text


def test_an_opioid_dependent_patient_gets_the_opioid_no_not_the_dependence_opening() -> None:
    first = answer_question("Can someone who is opioid dependent take LDN?").sections[
        "from_the_guidelines"
    ][0]
    assert first.statement == "answer.ldn.with_opioids"


def test_blood_tests_on_ldn_lead_with_the_liver_tests_statement() -> None:
    assert _lead("Does LDN need blood tests or monitoring?") == "ldn_safety.liver.impairment"


def test_a_kidney_question_about_a_medicine_without_renal_data_is_not_covered() -> None:
    assert not answer_question("amitriptyline dose with kidney problems").covered


def test_sitting_pain_question_leads_with_the_sitting_measures() -> None:
    answer = answer_question("what helps nerve pain down there when sitting")
    first = answer.sections["from_the_guidelines"][0].text
    assert "cushion" in first


def test_what_helps_pn_gives_treatment_options_not_an_ldn_overview() -> None:
    ids = answer_question("what helps pudendal pain when sitting at work").statement_ids()
    assert not any(i.startswith(("ldn", "answer.ldn")) for i in ids), ids


# --- two serotonergic medicines named together (second unseen-question review, q48) ----------
PAIR = "drug_warnings.serotonergic_pair"
LDN_WITH_EACH = "answer.ldn.with_non_opioids"


def test_duloxetine_and_amitriptyline_together_with_ldn_opens_on_the_pair_not_a_plain_yes() -> None:
    assert _lead("Can I take duloxetine and amitriptyline together with LDN?") == PAIR


def test_amitriptyline_with_tramadol_opens_on_serotonin_syndrome_not_on_naltrexone() -> None:
    assert _lead("Is amitriptyline with tramadol ok?") == PAIR


def test_ldn_with_one_of_several_medicines_in_turn_is_still_answered_about_ldn() -> None:
    assert (
        _lead("Can LDN be combined with gabapentin, duloxetine or amitriptyline?") == LDN_WITH_EACH
    )
    assert _lead("Can I take LDN with duloxetine?") == LDN_WITH_EACH
