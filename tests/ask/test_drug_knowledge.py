"""Drug knowledge (issue 15 item 5): each medicine ldncare offers, asked about its boxed warning,
pregnancy, breastfeeding and the kidney, answers with the cited statement for that medicine.

Each case reads like the clinical question it is; the answer must carry the statement, its key
words and the source it cites (a label, LactMed, UKTIS or a regulator), numbered in the answer's
references. Medicines whose pregnancy, breastfeeding or kidney text was not confirmed from a
source (the capsaicin patch in pregnancy and breastfeeding; tricyclics and the kidney) must get an
honest "not covered", never another medicine's advice.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question, ask_index
from ldncare.core.answer import Answer, Sentence


def _sentence(answer: Answer, statement: str) -> Sentence:
    """The sentence that states ``statement`` (not the "highest-quality source" line under it)."""
    text = ask_index().by_id[statement].text
    found = [s for s in answer.sentences() if s.statement == statement and s.text == text]
    assert found, (answer.question, statement, [s.statement for s in answer.sentences()])
    return found[0]


def _cited_sources(answer: Answer, sentence: Sentence) -> set[str]:
    by_number = {r.number: r.source.id for r in answer.references}
    return {by_number[n] for n in sentence.citations}


def _assert_cited(question: str, statement: str, words: tuple[str, ...], source: str) -> None:
    answer = answer_question(question)
    assert answer.covered, question
    sentence = _sentence(answer, statement)
    for word in words:
        assert word.lower() in sentence.text.lower(), (question, word, sentence.text)
    assert source in _cited_sources(answer, sentence), (question, sentence.citations)


# --- boxed warnings (first) ------------------------------------------------------------------

BOXED = [
    (
        "What is the boxed warning for duloxetine?",
        "drug_warnings.duloxetine.boxed",
        ("boxed warning", "suicidal"),
        "label_duloxetine",
    ),
    (
        "Does venlafaxine have a boxed warning?",
        "drug_warnings.venlafaxine.boxed",
        ("boxed warning", "suicidal"),
        "label_venlafaxine",
    ),
    (
        "What is the boxed warning for amitriptyline?",
        "drug_warnings.amitriptyline.boxed",
        ("boxed warning", "suicidal"),
        "label_amitriptyline",
    ),
    (
        "nortriptyline boxed warning",
        "drug_warnings.nortriptyline.boxed",
        ("boxed warning", "suicidal"),
        "label_nortriptyline",
    ),
    (
        "What is the boxed warning on tramadol?",
        "drug_warnings.tramadol.boxed",
        ("boxed warning", "respiratory depression"),
        "label_tramadol",
    ),
]


@pytest.mark.parametrize(("question", "statement", "words", "source"), BOXED)
def test_a_boxed_warning_question_opens_on_the_boxed_warning(
    question: str, statement: str, words: tuple[str, ...], source: str
) -> None:
    _assert_cited(question, statement, words, source)
    # Boxed warnings first: the label's boxed text is the answer's first sentence.
    assert answer_question(question).sentences()[0].statement == statement


def test_gabapentin_warnings_name_dress_suicidality_and_withdrawal_without_a_boxed_warning() -> (
    None
):
    answer = answer_question("Does gabapentin have a boxed warning?")
    ids = {s.statement for s in answer.sentences()}
    assert {
        "drug_warnings.gabapentin.dress",
        "drug_warnings.gabapentinoid.suicidality",
        "drug_warnings.gabapentinoid.withdrawal",
    } <= ids
    # No boxed warning was confirmed for gabapentin: none may be claimed (saying that none is
    # recorded is honest).
    assert "carries a boxed warning" not in " ".join(s.text for s in answer.sentences()).lower()


def test_pregabalin_warnings_open_on_angioedema_from_the_label() -> None:
    answer = answer_question("pregabalin warnings")
    assert answer.sentences()[0].statement == "drug_warnings.pregabalin.angioedema"
    _assert_cited(
        "Can pregabalin cause an allergic reaction?",
        "drug_warnings.pregabalin.angioedema",
        ("angioedema", "stopped at once"),
        "label_pregabalin",
    )


def test_stopping_pregabalin_abruptly_is_answered_with_the_taper() -> None:
    _assert_cited(
        "Is it dangerous to stop pregabalin abruptly?",
        "drug_warnings.gabapentinoid.withdrawal",
        ("at least a week", "seizures"),
        "label_pregabalin",
    )


def test_amitriptyline_overdose_is_named_as_potentially_fatal() -> None:
    _assert_cited(
        "amitriptyline overdose",
        "drug_warnings.tca.overdose",
        ("deaths may occur", "dysrhythmias"),
        "label_amitriptyline",
    )


def test_naltrexone_warnings_include_the_labels_mood_warning() -> None:
    _assert_cited(
        "naltrexone warnings",
        "drug_warnings.naltrexone.mood",
        ("depression", "suicidal"),
        "label_naltrexone",
    )


def test_duloxetine_liver_question_carries_the_hepatic_failure_warning() -> None:
    _assert_cited(
        "duloxetine liver",
        "drug_warnings.duloxetine.liver",
        ("liver failure", "alcohol"),
        "label_duloxetine",
    )


def test_duloxetine_side_effects_list_the_labels_common_reactions() -> None:
    _assert_cited(
        "What are the side effects of duloxetine?",
        "drug_warnings.duloxetine.side_effects",
        ("nausea", "somnolence", "dizziness", "30 mg"),
        "label_duloxetine",
    )


def test_gabapentin_with_an_opioid_warns_of_respiratory_depression() -> None:
    _assert_cited(
        "gabapentin and opioids together",
        "drug_warnings.gabapentin.opioids",
        ("respiratory depression", "opioid-related deaths"),
        "pi_neurontin_pfizer",
    )


# --- pregnancy ---------------------------------------------------------------------------------

PREGNANCY = [
    (
        "gabapentin pregnancy",
        "drug_safety.gabapentin.pregnancy",
        ("birth defects", "withdrawal in the newborn"),
        "label_gabapentin",
    ),
    (
        "Can I take pregabalin while pregnant?",
        "drug_safety.pregabalin.pregnancy",
        ("2,700", "birth defects"),
        "mhra2022_pregabalin",
    ),
    (
        "Is duloxetine safe in pregnancy?",
        "drug_safety.duloxetine.pregnancy",
        ("third trimester", "postpartum haemorrhage"),
        "label_duloxetine",
    ),
    (
        "venlafaxine in pregnancy",
        "drug_safety.venlafaxine.pregnancy",
        ("third trimester", "postpartum haemorrhage"),
        "label_venlafaxine",
    ),
    (
        "amitriptyline in pregnancy",
        "drug_safety.tca.pregnancy",
        ("birth defects", "newborn"),
        "uktis_amitriptyline",
    ),
    (
        "Is nortriptyline safe during pregnancy?",
        "drug_safety.tca.pregnancy",
        ("tricyclics", "newborn"),
        "uktis_amitriptyline",
    ),
    (
        "tramadol pregnancy",
        "drug_safety.tramadol.pregnancy",
        ("neonatal opioid withdrawal",),
        "label_tramadol",
    ),
    (
        "Is LDN safe in pregnancy?",
        "ldn_safety.pregnancy",
        ("no adequate human studies",),
        "label_naltrexone",
    ),
]


@pytest.mark.parametrize(("question", "statement", "words", "source"), PREGNANCY)
def test_a_pregnancy_question_gets_that_medicines_cited_pregnancy_statement(
    question: str, statement: str, words: tuple[str, ...], source: str
) -> None:
    _assert_cited(question, statement, words, source)


# --- breastfeeding -----------------------------------------------------------------------------

LACTATION = [
    (
        "Is gabapentin safe when breastfeeding?",
        "drug_safety.gabapentin.breastfeeding",
        ("2.1 g", "drowsiness"),
        "lactmed_gabapentin",
    ),
    (
        "Is pregabalin safe while breastfeeding?",
        "drug_safety.pregabalin.breastfeeding",
        ("7 %", "tumours"),
        "label_pregabalin",
    ),
    (
        "Can I breastfeed on duloxetine?",
        "drug_safety.duloxetine.breastfeeding",
        ("under 1 %", "not a reason to stop"),
        "lactmed_duloxetine",
    ),
    (
        "venlafaxine breastfeeding",
        "drug_safety.venlafaxine.breastfeeding",
        ("active metabolite", "sedation"),
        "lactmed_venlafaxine",
    ),
    (
        "amitriptyline breastfeeding",
        "drug_safety.amitriptyline.breastfeeding",
        ("milk levels are low", "sedation"),
        "lactmed_amitriptyline",
    ),
    (
        "nortriptyline breastfeeding",
        "drug_safety.nortriptyline.breastfeeding",
        ("preferred antidepressants",),
        "lactmed_nortriptyline",
    ),
    (
        "Can I breastfeed while taking tramadol?",
        "drug_safety.tramadol.breastfeeding",
        ("advise against", "limpness"),
        "lactmed_tramadol",
    ),
    ("Can I breastfeed on LDN?", "ldn_safety.breastfeeding", ("limited",), "label_naltrexone"),
]


@pytest.mark.parametrize(("question", "statement", "words", "source"), LACTATION)
def test_a_breastfeeding_question_gets_that_medicines_cited_lactation_statement(
    question: str, statement: str, words: tuple[str, ...], source: str
) -> None:
    _assert_cited(question, statement, words, source)


# --- the kidney (and liver) --------------------------------------------------------------------

RENAL = [
    ("gabapentin in kidney disease", "drug.gabapentin.renal", ("CrCl",), "label_gabapentin"),
    ("pregabalin kidney function dose", "drug.pregabalin.renal", ("CrCl",), "label_pregabalin"),
    (
        "duloxetine in renal impairment",
        "drug.duloxetine.cautions",
        ("creatinine clearance is below 30",),
        "label_duloxetine",
    ),
    (
        "venlafaxine kidney disease dose",
        "drug_warnings.venlafaxine.organ",
        ("haemodialysis", "renal impairment"),
        "label_venlafaxine",
    ),
    (
        "naltrexone in kidney disease",
        "ldn_safety.kidney",
        ("renal impairment",),
        "label_naltrexone",
    ),
]


@pytest.mark.parametrize(("question", "statement", "words", "source"), RENAL)
def test_a_kidney_question_gets_that_medicines_cited_renal_advice(
    question: str, statement: str, words: tuple[str, ...], source: str
) -> None:
    _assert_cited(question, statement, words, source)


def test_venlafaxine_in_liver_disease_halves_the_dose() -> None:
    _assert_cited(
        "venlafaxine in liver disease",
        "drug_warnings.venlafaxine.organ",
        ("halves the total daily dose", "hepatic impairment"),
        "label_venlafaxine",
    )


UNCONFIRMED = [
    "Is the capsaicin patch safe in pregnancy?",
    "Can I use the capsaicin patch while breastfeeding?",
    "Does the capsaicin patch need a lower dose in kidney disease?",
    "nortriptyline in kidney disease",
]


@pytest.mark.parametrize("question", UNCONFIRMED)
def test_a_medicine_with_no_confirmed_text_for_the_facet_is_not_covered(question: str) -> None:
    # Nothing confirmed from a source: an honest "not covered", not a neighbouring answer.
    assert not answer_question(question).covered


# --- safety invariant: no other medicine's safety advice ---------------------------------------

DRUGS = [
    "gabapentin",
    "pregabalin",
    "duloxetine",
    "venlafaxine",
    "amitriptyline",
    "nortriptyline",
    "tramadol",
]
ASKS = [
    "Is {} safe in pregnancy?",
    "Can I breastfeed on {}?",
    "{} warnings",
    "Can {} cause side effects?",
    "{} and the kidneys",
    "what should I know about {}",
]
CLASS_OF = {
    "gabapentin": "gabapentinoid",
    "pregabalin": "gabapentinoid",
    "duloxetine": "snri",
    "venlafaxine": "snri",
    "amitriptyline": "tca",
    "nortriptyline": "tca",
    "tramadol": "opioid",
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drug=st.sampled_from(DRUGS), ask=st.sampled_from(ASKS))
def test_drug_safety_sentences_are_about_the_medicine_asked(drug: str, ask: str) -> None:
    """A pregnancy, breastfeeding or warning statement in the answer is about the medicine named
    (or its class): advice for one medicine must never be given as another's."""
    index = ask_index()
    answer = answer_question(ask.format(drug))
    for sentence in answer.sentences():
        if not sentence.statement.startswith(("drug_safety.", "drug_warnings.")):
            continue
        subjects = set(index.by_id[sentence.statement].subjects)
        assert {drug, CLASS_OF[drug]} & subjects, (ask.format(drug), sentence.statement)
        if sentence.statement.startswith("drug_safety."):
            # Pregnancy and lactation facts are drug-specific: the drug itself, not the class.
            assert drug in subjects, (ask.format(drug), sentence.statement)


def test_a_cyp2d6_poor_metaboliser_on_amitriptyline_gets_the_cpic_advice() -> None:
    _assert_cited(
        "What dose of amitriptyline for a CYP2D6 poor metabolizer?",
        "drug_warnings.tca.cyp2d6",
        ("poor metabolisers", "half the usual dose"),
        "hicks2017",
    )


# --- second round: the independent pharmacist's review (issue 15 item 5) -----------------------


def test_capsaicin_patch_for_pudendal_neuralgia_says_clinic_only_mucosa_and_blood_pressure() -> (
    None
):
    # The review's unsafe finding (q25): the patch dosing was given for PN with no warning.
    _assert_cited(
        "Is the capsaicin 8% patch suitable for pudendal neuralgia?",
        "drug_warnings.capsaicin_patch.application",
        ("physician", "mucous membranes", "blood pressure", "off-label"),
        "label_qutenza",
    )


def test_capsaicin_patch_for_pn_says_not_covered_and_gives_its_application_warning() -> None:
    # Known gap (session note): the warning should lead; the opening is still its dosing.
    answer = answer_question("Is the capsaicin 8% patch suitable for pudendal neuralgia?")
    order = [s.statement for s in answer.sentences()]
    assert "drug_warnings.capsaicin_patch.application" in order
    assert any("capsaicin 8 % patch" in p for p in answer.not_covered_points)


def test_lidocaine_plaster_on_the_perineum_is_for_intact_skin_only() -> None:
    _assert_cited(
        "Can I use lidocaine plaster on the perineum / genital area?",
        "drug_warnings.lidocaine_plaster.skin",
        ("intact skin", "broken or inflamed skin", "mucous membranes", "off-label"),
        "label_lidoderm",
    )


def test_lidocaine_plaster_interactions_name_class_i_antiarrhythmics() -> None:
    _assert_cited(
        "Does the lidocaine plaster interact with anything?",
        "drug_warnings.lidocaine_plaster.interactions",
        ("Class I antiarrhythmic", "mexiletine", "other local anaesthetics"),
        "label_lidoderm",
    )


STOPPING = [
    (
        "How do I stop taking duloxetine?",
        "drug_warnings.duloxetine.stopping",
        ("not stopped abruptly", "gradually", "dizziness"),
        "label_duloxetine",
    ),
    (
        "how to stop venlafaxine",
        "drug_warnings.venlafaxine.stopping",
        ("not stopped abruptly", "gradually"),
        "label_venlafaxine",
    ),
    (
        "How do I come off amitriptyline?",
        "drug_warnings.amitriptyline.stopping",
        ("abrupt cessation", "nausea, headache and malaise"),
        "label_amitriptyline",
    ),
    (
        "Can I stop nortriptyline suddenly?",
        "drug_warnings.nortriptyline.stopping",
        ("abrupt cessation", "nausea, headache and malaise"),
        "label_nortriptyline",
    ),
]


@pytest.mark.parametrize(("question", "statement", "words", "source"), STOPPING)
def test_a_patient_asking_how_to_stop_an_antidepressant_is_told_to_taper(
    question: str, statement: str, words: tuple[str, ...], source: str
) -> None:
    # q17 was answered with the up-titration schedule.
    _assert_cited(question, statement, words, source)


def test_can_pregabalin_be_misused_opens_on_its_schedule_v_misuse_warning() -> None:
    _assert_cited(
        "Can pregabalin be misused?",
        "drug_warnings.pregabalin.misuse",
        ("Schedule V", "euphoria", "drug-seeking"),
        "label_pregabalin",
    )
    answer = answer_question("Can pregabalin be misused?")
    assert answer.sentences()[0].statement == "drug_warnings.pregabalin.misuse"


def test_tramadol_contraindications_include_children_and_maois() -> None:
    _assert_cited(
        "tramadol contraindications",
        "drug_warnings.tramadol.contraindications",
        ("younger than 12", "tonsils", "MAO inhibitor", "14 days"),
        "label_tramadol",
    )


def test_duloxetine_with_tramadol_and_seizures_gets_tramadols_seizure_warning() -> None:
    _assert_cited(
        "Can duloxetine and tramadol cause seizures?",
        "drug_warnings.tramadol.seizures",
        ("seizures", "tricyclic antidepressants", "SNRIs", "duloxetine", "seizure threshold"),
        "label_tramadol",
    )


def test_tramadol_with_a_cyp2d6_inhibitor_gets_the_m1_and_cpic_advice() -> None:
    question = "tramadol interaction with CYP2D6 inhibitors"
    _assert_cited(
        question, "drug_warnings.tramadol.cyp2d6", ("M1", "poor metabolisers"), "label_tramadol"
    )
    _assert_cited(question, "drug_warnings.tramadol.cyp2d6", ("ultrarapid",), "crews2021")


DOSE_LIMITS = [
    (
        "Is tramadol safe for a 80 year old?",
        "drug_warnings.tramadol.older_adults",
        ("over the age of 75", "300 mg a day"),
    ),
    (
        "tramadol dose in kidney disease",
        "drug_warnings.tramadol.kidney",
        ("below 30 mL/min", "12 hours apart", "200 mg a day"),
    ),
    (
        "tramadol dose in cirrhosis",
        "drug_warnings.tramadol.liver",
        ("cirrhosis", "50 mg every 12 hours"),
    ),
]


@pytest.mark.parametrize(("question", "statement", "words"), DOSE_LIMITS)
def test_tramadol_label_dose_limits_reach_the_answer(
    question: str, statement: str, words: tuple[str, ...]
) -> None:
    # q49 (unsafe): an 80-year-old was shown the 400 mg maximum; q50: renal "not covered".
    _assert_cited(question, statement, words, "label_tramadol")


def test_nortriptyline_after_a_heart_attack_gets_the_post_infarction_warning() -> None:
    _assert_cited(
        "Is nortriptyline safe after a heart attack?",
        "drug_warnings.tca.heart_attack",
        ("acute recovery period", "myocardial infarction", "arrhythmias"),
        "label_nortriptyline",
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(age=st.integers(min_value=76, max_value=104))
def test_tramadol_for_anyone_over_75_states_the_300_mg_cap(age: int) -> None:
    """Whatever age over 75 is stated, the answer carries the label's 300 mg a day cap."""
    answer = answer_question(f"Is tramadol safe for a {age} year old?")
    assert "drug_warnings.tramadol.older_adults" in {s.statement for s in answer.sentences()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drug=st.sampled_from(["capsaicin patch", "lidocaine plaster"]),
    ask=st.sampled_from(
        ["Is the {} safe?", "{} warnings", "Can I use the {} down there?", "{} side effects"]
    ),
)
def test_topical_warnings_are_about_the_topical_asked_or_named_plainly(drug: str, ask: str) -> None:
    """A topical's label warning in an answer is either that topical's or names its own medicine:
    the capsaicin patch's clinic-only warning is never given as the lidocaine plaster's."""
    index = ask_index()
    answer = answer_question(ask.format(drug))
    asked = drug.replace(" ", "_")
    for sentence in answer.sentences():
        if not sentence.statement.startswith("drug_warnings."):
            continue
        subjects = index.by_id[sentence.statement].subjects
        if asked not in subjects:
            # Another medicine's warning must say whose it is.
            other = subjects[0].replace("_", " ").split()[0]
            assert other in sentence.text.lower(), (
                ask.format(drug),
                sentence.statement,
            )


@pytest.mark.parametrize(
    "question",
    [
        "Can I use a lidocaine plaster while breastfeeding?",
        "Is the lidocaine plaster safe in pregnancy?",
    ],
)
def test_lidocaine_plaster_before_birth_and_when_breastfeeding_gets_the_labels_caution(
    question: str,
) -> None:
    _assert_cited(
        question,
        "drug_safety.lidocaine_plaster.pregnancy",
        ("caution", "labour and delivery", "fed at the breast"),
        "label_lidoderm",
    )
