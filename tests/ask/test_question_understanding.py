"""Question understanding: subjects, facets asked and the plan, read as a clinician would."""

from __future__ import annotations

import pytest

from ldncare.ask import answer_question, understand_question


@pytest.mark.parametrize(
    "question",
    [
        "Is naltrexone useful for pudendal neuralgia?",
        "Can low-dose naltrexone help my pudendal nerve pain?",
        "LDN for PN: what does the evidence say and how is it used?",
        "would low dose naltrexon help my nerve pain down there",
        "does LDN work for sitting pain",
    ],
)
def test_usefulness_questions_are_read_as_an_ldn_overview_for_pn(question: str) -> None:
    q = understand_question(question)
    assert "ldn" in q.subjects
    assert "pn" in q.subjects
    assert q.overview
    for facet in ("dose", "timing", "trial", "mechanism", "side_effects", "non_drug"):
        assert facet in q.plan


def test_low_dose_in_the_drug_name_does_not_make_a_dose_question() -> None:
    q = understand_question("Is low dose naltrexone safe in pregnancy?")
    assert q.asked == ("pregnancy",)
    assert q.yes_no


def test_how_long_to_work_asks_for_trial_length_not_pregnancy() -> None:
    q = understand_question("How long does it take for LDN to work?")
    assert q.plan[0] == "trial"
    assert "pregnancy" not in q.plan


def test_combination_with_a_named_drug_adds_its_class_but_not_its_siblings() -> None:
    q = understand_question("Can LDN be combined with gabapentin?")
    assert {"ldn", "gabapentin", "gabapentinoid"} <= set(q.subjects)
    assert "pregabalin" not in q.subjects
    assert q.plan[:2] == ("answer", "interactions")


def test_a_class_stands_for_its_member_drugs() -> None:
    q = understand_question("What are the side effects of SNRIs?")
    assert {"snri", "duloxetine", "venlafaxine"} <= set(q.subjects)


def test_trigeminal_neuralgia_is_recognised_as_outside_the_evidence_base() -> None:
    q = understand_question("What are the treatments for trigeminal neuralgia?")
    assert q.condition == "trigeminal_neuralgia"
    assert "pn" not in q.subjects


def test_pn_treatment_question_asks_for_non_drug_care_and_alternatives() -> None:
    q = understand_question("How is pudendal neuralgia treated?")
    assert not q.overview
    assert q.plan[:2] == ("non_drug", "alternatives")


@pytest.mark.parametrize(
    ("question", "opening"),
    [
        ("Can LDN be combined with duloxetine?", "Yes, they can be taken together"),
        ("Can I take tramadol with LDN?", "No:"),
        ("Is LDN FDA approved for pudendal neuralgia?", "No:"),
        ("Should naltrexone be stopped before surgery?", "Yes, usually"),
        ("Is naltrexone useful for pudendal neuralgia?", "It depends"),
        ("Is LDN safe while breastfeeding?", "It depends"),
    ],
)
def test_yes_no_question_is_answered_in_the_first_sentence(question: str, opening: str) -> None:
    first = answer_question(question).sections["from_the_guidelines"][0]
    assert first.text.startswith(opening)
    assert first.statement.startswith("answer.")
    assert first.citations


def test_open_question_gets_no_yes_no_opening() -> None:
    first = answer_question("What dose of LDN for nerve pain?").sections["from_the_guidelines"][0]
    assert not first.statement.startswith("answer.")
    assert "mg" in first.text


def test_a_yes_no_clause_after_a_statement_is_still_answered_yes_or_no() -> None:
    q = understand_question("my bum hurts when i sit, will ldn help")
    assert q.yes_no and "pn" in q.subjects and q.overview


def test_an_either_or_question_gets_no_yes_no_opening() -> None:
    first = answer_question("should i take ldn at night or in the morning")
    assert not first.sections["from_the_guidelines"][0].text.startswith("Usually yes")
    assert "bedtime" in first.sections["from_the_guidelines"][0].text


@pytest.mark.parametrize("question", ["Can I drive on LDN?", "Is naltrexone the same as naloxone?"])
def test_a_question_using_words_the_base_never_uses_is_not_covered(question: str) -> None:
    assert not answer_question(question).covered
