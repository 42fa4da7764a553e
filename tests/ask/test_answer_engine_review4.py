"""Fourth round of `ldncare ask` (issue 15): faults an independent pharmacist found.

Each test is a clinical question the review graded WRONG or UNSAFE, checked against what the
label or the question's own subject requires; the property tests hold the safety invariants for
any age, drug and organ named."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question
from ldncare.core.answer import Answer

STOCK_FIRST_LINE = "answer.np.first_line_for_pn"


def _text(answer: Answer) -> str:
    return " ".join(s.text for s in answer.sentences())


def _opening(answer: Answer) -> str:
    return answer.sections["from_the_guidelines"][0].text


def test_80_year_old_asking_about_tramadol_gets_the_over_75_limit_not_400_mg() -> None:
    answer = answer_question("Is tramadol safe for a 80 year old?")
    text = _text(answer)
    assert "patients over 75: at most 300 mg a day" in text
    assert "maximum 400 mg a day" not in text
    assert "drug.tramadol.dosing" not in answer.statement_ids()


def test_tramadol_in_kidney_disease_gives_the_crcl_below_30_limit_not_not_covered() -> None:
    answer = answer_question("tramadol dose in kidney disease")
    assert answer.covered
    assert "creatinine clearance below 30 mL/min: at most 200 mg a day" in _text(answer)
    assert "maximum 400 mg a day" not in _text(answer)


def test_tramadol_with_cirrhosis_gets_the_liver_limit() -> None:
    text = _text(answer_question("Can I take tramadol with liver cirrhosis?"))
    assert "cirrhosis of the liver: at most 100 mg a day" in text
    assert "maximum 400 mg a day" not in text


def test_older_adult_asking_about_gabapentin_sees_the_older_adult_caution_with_any_dosing() -> None:
    answer = answer_question("Should older adults avoid gabapentin?")
    ids = answer.statement_ids()
    if "drug.gabapentin.dosing" in ids:
        assert "drug.gabapentin.cautions" in ids


def test_lidocaine_plaster_on_the_perineum_is_not_opened_with_oral_first_line_text() -> None:
    answer = answer_question("Can I use lidocaine plaster on the perineum / genital area?")
    assert STOCK_FIRST_LINE not in answer.statement_ids()
    assert not _opening(answer).startswith("They may")
    assert any("perineum" in p or "genital" in p for p in answer.not_covered_points)


def test_capsaicin_patch_for_pn_is_not_opened_with_oral_first_line_text() -> None:
    answer = answer_question("Is the capsaicin 8% patch suitable for pudendal neuralgia?")
    assert STOCK_FIRST_LINE not in answer.statement_ids()
    assert not _opening(answer).startswith("They may")


def test_lidocaine_for_post_herpetic_neuralgia_is_not_a_pn_first_line_answer() -> None:
    answer = answer_question("Does lidocaine patch help post herpetic neuralgia?")
    assert STOCK_FIRST_LINE not in answer.statement_ids()


def test_gabapentin_with_oxycodone_carries_no_naltrexone_filler() -> None:
    answer = answer_question("can i take gabapentin with oxycodone")
    assert "naltrexone" not in _text(answer).lower()


_DRUGS = ["tramadol", "gabapentin", "pregabalin", "amitriptyline", "duloxetine", "nortriptyline"]


@settings(max_examples=25, deadline=None)
@given(drug=st.sampled_from(["tramadol"]), age=st.integers(min_value=76, max_value=104))
def test_any_age_over_75_never_shows_tramadol_adult_maximum(drug: str, age: int) -> None:
    text = _text(answer_question(f"Is {drug} safe for a {age} year old?"))
    assert "maximum 400 mg a day" not in text


@settings(max_examples=25, deadline=None)
@given(
    drug=st.sampled_from(_DRUGS),
    where=st.sampled_from(["kidney disease", "liver disease", "an elderly patient"]),
)
def test_a_named_medicine_is_never_opened_with_the_stock_first_line_text(
    drug: str, where: str
) -> None:
    answer = answer_question(f"Can I use {drug} in {where}?")
    if answer.covered:
        assert not _opening(answer).startswith("They may")
        if drug == "tramadol":
            assert "maximum 400 mg a day" not in _text(answer)


def test_how_to_stop_duloxetine_opens_on_its_taper_and_never_gives_the_up_titration() -> None:
    # The label's discontinuation text is in the base now (drug_warnings_review.yaml): it leads,
    # and the taper is no longer a point the base does not cover.
    answer = answer_question("How do I stop taking duloxetine?")
    assert "increase by 30 mg" not in _text(answer)
    assert "drug.duloxetine.dosing" not in answer.statement_ids()
    lead = " ".join(s.text for s in answer.sections["from_the_guidelines"])
    assert "reducing the dose gradually" in lead
    assert not any("taper duloxetine" in p for p in answer.not_covered_points)


def test_stopping_gabapentin_suddenly_still_gets_the_taper_statement() -> None:
    answer = answer_question("Can I stop gabapentin suddenly?")
    assert "drug_warnings.gabapentinoid.withdrawal" in answer.statement_ids()
    assert not any("taper gabapentin" in p for p in answer.not_covered_points)


def test_pregabalin_in_pregnancy_opens_on_pregnancy_not_breastfeeding() -> None:
    answer = answer_question("Is pregabalin safe in pregnancy?")
    lead = answer.sections["from_the_guidelines"]
    assert "drug_safety.pregabalin.pregnancy" in [s.statement for s in lead]
    assert "drug_safety.pregabalin.breastfeeding" not in [s.statement for s in lead]


def test_duloxetine_while_breastfeeding_opens_on_the_breastfed_baby_not_pregnancy() -> None:
    answer = answer_question("Is duloxetine okay while breastfeeding?")
    lead = [s.statement for s in answer.sections["from_the_guidelines"]]
    assert "drug_safety.duloxetine.breastfeeding" in lead
    assert "drug_safety.duloxetine.pregnancy" not in lead


def test_seizure_question_about_duloxetine_and_tramadol_leads_on_seizures_without_ldn_filler() -> (
    None
):
    answer = answer_question("Can duloxetine and tramadol cause seizures?")
    lead = " ".join(s.text for s in answer.sections["from_the_guidelines"])
    assert "seizure" in lead.lower()
    assert "drug.tramadol.with_ldn" not in answer.statement_ids()


@settings(max_examples=20, deadline=None)
@given(drug=st.sampled_from(["duloxetine", "venlafaxine", "pregabalin", "gabapentin", "tramadol"]))
def test_a_stopping_question_never_shows_the_start_and_increase_schedule(drug: str) -> None:
    answer = answer_question(f"How do I stop taking {drug}?")
    if answer.covered:
        assert f"drug.{drug}.dosing" not in answer.statement_ids()


def test_which_alternatives_in_kidney_disease_gives_one_kidney_line_per_medicine() -> None:
    answer = answer_question("Which alternatives are safe in kidney disease?")
    ids = answer.statement_ids()
    assert "ldn_safety.kidney" not in ids
    for line in ("drug.gabapentin.renal", "drug.pregabalin.renal"):
        assert line in ids
    # tramadol's kidney limit: the monograph's dose limits or the label statement carrying them
    assert {"drug.tramadol.dose_limits", "drug_warnings.tramadol.kidney"} & set(ids)
    # each medicine without a kidney statement is named, never passed over in silence
    assert any("amitriptyline in kidney disease" in p for p in answer.not_covered_points)


def test_ldn_for_a_75_year_old_on_warfarin_says_warfarin_is_not_covered() -> None:
    answer = answer_question("Is LDN safe for a 75 year old on warfarin?")
    assert any("taking warfarin with LDN" in p for p in answer.not_covered_points)


def test_venlafaxine_versus_duloxetine_opens_by_saying_no_head_to_head_trial() -> None:
    answer = answer_question("Is venlafaxine better than duloxetine for nerve pain?")
    assert _opening(answer).startswith("No head-to-head trial of venlafaxine and duloxetine")
    lead = answer.sections["from_the_guidelines"]
    assert "np.nnt" not in [s.statement for s in lead]


def test_amitriptyline_versus_nortriptyline_gives_each_sides_side_effects() -> None:
    answer = answer_question("amitriptyline vs nortriptyline which has fewer side effects")
    assert _opening(answer).startswith("No head-to-head trial")
    ids = answer.statement_ids()
    assert {"drug.amitriptyline.side_effects", "drug.nortriptyline.side_effects"} <= set(ids)


@settings(max_examples=20, deadline=None)
@given(
    pair=st.permutations(["gabapentin", "pregabalin", "duloxetine", "amitriptyline"]).map(
        lambda p: p[:2]
    )
)
def test_a_comparison_never_opens_with_the_class_nnt_table(pair: list[str]) -> None:
    answer = answer_question(f"Is {pair[0]} better than {pair[1]}?")
    if answer.covered:
        assert answer.sections["from_the_guidelines"][0].statement != "np.nnt"


def _lead_ids(question: str) -> list[str]:
    return [s.statement for s in answer_question(question).sections["from_the_guidelines"]]


def test_venlafaxine_with_high_blood_pressure_leads_on_its_blood_pressure_caution() -> None:
    answer = answer_question("Is venlafaxine safe with high blood pressure?")
    lead = " ".join(s.text for s in answer.sections["from_the_guidelines"])
    assert "blood pressure" in lead
    # after the yes/no opening, the statement that leads is the blood pressure caution
    assert answer.sections["from_the_guidelines"][1].statement == "drug.venlafaxine.cautions"


def test_nortriptyline_after_a_heart_attack_leads_on_the_post_infarction_contraindication() -> None:
    answer = answer_question("Is nortriptyline safe after a heart attack?")
    lead = " ".join(s.text for s in answer.sections["from_the_guidelines"])
    assert "myocardial infarction" in lead


def test_pregabalin_misuse_question_leads_on_misuse_not_on_dosing() -> None:
    answer = answer_question("Can pregabalin be misused?")
    lead = " ".join(s.text for s in answer.sections["from_the_guidelines"])
    assert "misuse" in lead.lower()
    assert "drug.pregabalin.dosing" not in _lead_ids("Can pregabalin be misused?")


def test_ldn_and_thyroid_medication_leads_on_thyroid_not_the_opioid_contraindication() -> None:
    lead = _lead_ids("LDN and thyroid medication - any interaction?")
    assert lead[0] == "ldn_safety.thyroid.evidence"


def test_a_heart_attack_or_a_teenager_is_not_mistaken_for_an_unknown_medicine() -> None:
    for question in (
        "Is nortriptyline safe after a heart attack?",
        "What about amitriptyline and suicidal thoughts in a teenager?",
    ):
        assert not answer_question(question).not_covered_points, question


def test_lidocaine_plaster_interactions_are_its_label_interactions_not_its_cautions() -> None:
    # The label's interactions are in the base now (drug_warnings_review.yaml): they answer it.
    answer = answer_question("Does the lidocaine plaster interact with anything?")
    assert "mexiletine" in _text(answer)
    assert not any("interactions of lidocaine" in p for p in answer.not_covered_points)


def test_lidocaine_for_post_herpetic_neuralgia_is_outside_the_pn_base() -> None:
    answer = answer_question("Does lidocaine patch help post herpetic neuralgia?")
    assert not answer.covered or answer.scope is not None
