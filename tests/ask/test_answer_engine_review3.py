"""Third round of `ldncare ask` (issue 15): the best source among all cited, yes/no openings,
LDN for pudendal-neuralgia symptoms asked in lay words."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question, ask_index, understand_question
from ldncare.core.answer import Answer, source_quality
from ldncare.core.question import opens_yes_no
from ldncare.evidence.models import Source

GOLD = Path(__file__).with_name("gold.yaml")
GOLD_QUESTIONS = [str(i["q"]) for i in yaml.safe_load(GOLD.read_text("utf-8"))["questions"]]


def _lead(answer: Answer) -> tuple[Source, str]:
    lead = answer.sections["key_considerations"][0]
    return {r.number: r.source for r in answer.references}[lead.citations[0]], lead.text


def _cited_by_statements(answer: Answer) -> dict[str, Source]:
    by_id = ask_index().by_id
    sources = ask_index().evidence.sources
    return {
        cid: sources[cid]
        for s in answer.sentences()
        if s.basis == "statement" and s.statement in by_id
        for cid in by_id[s.statement].citations
    }


def _section_of(answer: Answer, source_id: str) -> set[str]:
    by_id = ask_index().by_id
    return {
        name
        for name, part in answer.sections.items()
        for s in part
        if s.basis == "statement"
        and s.statement in by_id
        and source_id in by_id[s.statement].citations
        and not s.text.startswith("The highest-quality")
    }


def test_gp_starting_ldn_hears_a_source_of_the_dose_statements_as_best() -> None:
    # Review round 4: the best source is chosen among those behind the main point asked (the
    # dose), not the best of the whole answer (the 2024 fibromyalgia RCT cited only for the
    # trial length).
    answer = answer_question("How do I start low-dose naltrexone for pudendal neuralgia?")
    source, text = _lead(answer)
    by_id = ask_index().by_id
    dose_sources = {
        cid
        for s in answer.sentences()
        if s.basis == "statement" and s.statement in by_id and "dose" in by_id[s.statement].facets
        for cid in by_id[s.statement].citations
    }
    assert source.id in dose_sources
    assert source.id != "bruun2024"
    assert text.startswith("The highest-quality source for the main point here")


def test_overview_names_an_ldn_review_not_the_first_line_drug_meta_analysis() -> None:
    # Finnerup 2015 (high certainty) backs only the alternatives, not whether LDN helps (review
    # round 4: named for LDN answers it holds no data on); the main point's sources lead.
    answer = answer_question("Is naltrexone useful for pudendal neuralgia?")
    source, text = _lead(answer)
    assert source.id != "finnerup2015"
    assert source.evidence_type in {"systematic_review", "meta_analysis", "rct"}
    assert "not pudendal neuralgia" in text


def test_patient_asking_about_nerve_blocks_hears_pudendal_evidence_called_direct() -> None:
    source, text = _lead(answer_question("When is a pudendal nerve block appropriate?"))
    assert source.population == "pudendal_neuralgia"
    assert "direct evidence in pudendal neuralgia" in text


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(GOLD_QUESTIONS))
def test_the_named_best_source_backs_the_main_point_and_is_its_best_graded(question: str) -> None:
    # Review round 4: the lead is chosen among the sources of the statements that answer the
    # main point (the opening, else the main facet's statements), so it is cited by the answer
    # and no source of the opening statement outranks it (an overview's main point is the
    # evidence on whether LDN helps, not its opening: see the overview test).
    answer = answer_question(question)
    if not answer.covered:
        return
    source, text = _lead(answer)
    cited = _cited_by_statements(answer)
    assert source.id in cited
    assert str(source.year) in text
    if understand_question(question).overview:
        return
    by_id = ask_index().by_id
    first = answer.sections["from_the_guidelines"][0]
    if first.basis != "statement" or first.statement not in by_id:
        return
    opening = [ask_index().evidence.sources[c] for c in by_id[first.statement].citations]
    assert source_quality(source) <= min(source_quality(s) for s in opening)


def _first(question: str) -> str:
    return answer_question(question).sentences()[0].text


def test_gp_asking_if_amitriptyline_is_safe_with_heart_disease_hears_not_without_checking() -> None:
    # The monograph's contraindications (acute recovery after a myocardial infarction) decide it.
    first = _first("Is amitriptyline safe in someone with heart problems?")
    assert first.startswith("Not without checking first: amitriptyline has")
    text = " ".join(
        s.text
        for s in answer_question(
            "Is amitriptyline safe in someone with heart problems?"
        ).sentences()
    )
    assert "myocardial infarction" in text


def test_pregabalin_boxed_warning_question_is_answered_from_what_the_base_records() -> None:
    first = _first("Does pregabalin have a black box warning?")
    assert first.startswith("No boxed warning for pregabalin is recorded")
    assert _first("Does amitriptyline have a boxed warning?").startswith(
        "Yes: amitriptyline carries a boxed warning"
    )


def test_kidney_patient_asking_about_gabapentin_hears_it_depends_on_kidney_function() -> None:
    assert _first("Can I use gabapentin if I have kidney disease?").startswith(
        "It depends on kidney function"
    )


def test_patient_asking_if_ldn_causes_insomnia_hears_yes_from_the_side_effect_evidence() -> None:
    answer = answer_question("can ldn cause insomnia")
    first = answer.sentences()[0]
    assert first.text.startswith("Yes, it can")
    assert "sleep" in ask_index().by_id[first.statement].topics


def test_missed_dose_question_opens_with_not_known() -> None:
    assert _first("I forgot to take my LDN last night, should I double up?").startswith("Not known")


def test_every_yes_no_gold_question_opens_with_yes_no_or_it_depends() -> None:
    checked = 0
    for question in GOLD_QUESTIONS:
        answer = answer_question(question)
        if not answer.covered or not (answer.understood or {}).get("yes_no"):
            continue
        checked += 1
        first = answer.sentences()[0]
        assert opens_yes_no(first.text), (question, first.text)
        # Derived from the evidence: a cited opening, or a statement the answer uses.
        statement = ask_index().by_id[first.statement]
        assert "answer" in statement.facets or first.statement in answer.statement_ids()[1:]
        assert first.citations
    assert checked >= 80


def _facets_of(answer: Answer) -> set[str]:
    by_id = ask_index().by_id
    return {
        f for s in answer.sentences() if s.statement in by_id for f in by_id[s.statement].facets
    }


def test_patient_whose_sitting_flares_ask_if_ldn_would_fix_them_hears_about_ldn_for_pn_first() -> (
    None
):
    answer = answer_question("my pn pain flares after sitting all day, would ldn fix that")
    first = answer.sentences()[0]
    assert first.statement == "answer.ldn.usefulness"
    assert first.text.startswith("It depends")
    # Usefulness, evidence, dose and trial of LDN, then the care around it.
    assert {"evidence", "dose", "trial", "non_drug"} <= _facets_of(answer)
    text = " ".join(s.text for s in answer.sentences())
    assert "1 to 2 mg" in text and "2 to 3 months" in text and "physical therapy" in text


def test_sitting_words_naming_the_symptom_do_not_turn_an_ldn_question_into_sitting_advice() -> None:
    question = understand_question("would LDN fix my sitting flares?")
    assert question.overview and "pn" in question.subjects
    assert "non_drug" not in question.asked


def test_sitting_advice_asked_in_its_own_right_still_gets_the_cushion() -> None:
    answer = answer_question("Does sitting on a cushion help pudendal neuralgia?")
    assert answer.sentences()[0].text.startswith("Yes, as part of care")
    assert "cushion" in answer.sentences()[0].text


_PN_WORDS = [
    "sitting pain",
    "nerve pain down there",
    "burning when I sit",
    "pelvic nerve pain",
    "sitting flares",
    "pain when sitting",
    "pudendal neuralgia",
]
_LDN_FRAMES = [
    "would LDN fix my {}?",
    "can low dose naltrexone help my {}",
    "is LDN any good for {}?",
    "does ldn work for {}",
    "could low dose naltrexon help with my {}?",
]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(_PN_WORDS), st.sampled_from(_LDN_FRAMES))
def test_ldn_asked_about_a_pn_symptom_in_lay_words_is_answered_about_ldn_for_pn(
    words: str, frame: str
) -> None:
    question = frame.format(words)
    understood = understand_question(question)
    assert {"ldn", "pn"} <= set(understood.subjects), question
    answer = answer_question(question)
    assert answer.covered and answer.sentences()[0].statement == "answer.ldn.usefulness", question
    assert {"evidence", "dose", "trial", "non_drug"} <= _facets_of(answer), question


def test_patient_choosing_morning_or_night_hears_the_opening_about_morning_dosing() -> None:
    answer = answer_question("Should I take LDN in the morning or at night?")
    assert answer.sentences()[0].statement == "answer.ldn.sleep_timing"
    assert "bedtime" in " ".join(s.text for s in answer.sentences())


def test_boxed_warnings_of_the_alternatives_open_with_a_medicine_that_carries_one() -> None:
    first = answer_question("What are the boxed warnings for the alternatives to LDN?").sentences()[
        0
    ]
    assert "boxed-warning" in ask_index().by_id[first.statement].topics


def test_gp_asking_for_ldn_evidence_in_nerve_pain_gets_no_pudendal_care() -> None:
    answer = answer_question("whats the evidence that ldn works for nerve pain")
    by_id = ask_index().by_id
    assert answer.covered
    subjects = [set(by_id[s.statement].subjects) for s in answer.sentences()]
    assert not any(s == {"pn"} for s in subjects)
    assert "evidence" in _facets_of(answer)


def test_patient_asking_ldn_for_back_pain_is_told_it_is_not_covered() -> None:
    answer = answer_question("can i use ldn for my back pain")
    assert not answer.covered


def test_patient_asking_whether_ldn_can_be_stopped_suddenly_is_not_told_no() -> None:
    first = answer_question("can ldn be stopped suddenly").sentences()[0].text
    assert first.startswith("No withdrawal is expected")


@pytest.mark.parametrize(
    ("question", "opening"),
    [
        ("gp here - pt with pudendal neuralgia asking about LDN, worth a go?", "It depends"),
        ("LDN for my PN, any good?", "It depends"),
        ("duloxetine and LDN together ok?", "Yes, they can be taken together"),
        ("ldn and tramadol, ok?", "No"),
    ],
)
def test_an_elliptical_yes_no_clause_ending_the_question_is_answered_yes_no_or_it_depends(
    question: str, opening: str
) -> None:
    answer = answer_question(question)
    assert (answer.understood or {}).get("yes_no") is True
    assert answer.sentences()[0].text.startswith(opening)


def test_a_what_question_with_safe_in_it_is_not_taken_for_a_yes_no_one() -> None:
    assert (answer_question("What is the safe dose of LDN?").understood or {}).get(
        "yes_no"
    ) is False


def test_duloxetine_and_amitriptyline_with_ldn_give_the_pair_risk_then_ldn_with_each() -> None:
    answer = answer_question("Can I take duloxetine and amitriptyline together with LDN?")
    ids = answer.statement_ids()
    assert ids[0] == "drug_warnings.serotonergic_pair"
    assert "answer.ldn.with_non_opioids" in ids[1:]
