"""What was tried before is history; LDN added to a medicine is answered with how LDN starts.

Review round 3: "failed pregabalin, is LDN worth trying?" was answered as a question about
combining pregabalin with LDN, and "evidence-based approach to LDN in PN" with the evidence alone.
"""

from __future__ import annotations

import pytest

from ldncare.ask import answer_question, understand_question


@pytest.mark.parametrize(
    ("question", "tried"),
    [
        (
            "Patient failed pregabalin and duloxetine for PN, is LDN worth trying?",
            {"pregabalin", "duloxetine"},
        ),
        (
            "Tried gabapentin and amitriptyline, nothing helped. Should I try LDN?",
            {"gabapentin", "amitriptyline"},
        ),
        ("Gabapentin didn't work for my pudendal neuralgia, could LDN help?", {"gabapentin"}),
        ("After failing duloxetine, is low dose naltrexone an option for PN?", {"duloxetine"}),
        ("no relief from nortriptyline - LDN next?", {"nortriptyline"}),
    ],
)
def test_a_medicine_tried_before_is_history_and_the_question_is_about_ldn(
    question: str, tried: set[str]
) -> None:
    q = understand_question(question)
    assert q.named == ("ldn",)
    assert tried.isdisjoint(q.subjects)
    assert not q.combination
    assert q.overview


@pytest.mark.parametrize(
    "question",
    [
        "failed tramadol, can I try LDN?",
        "tramadol didn't work, could LDN help?",
        "tried oxycodone, now want LDN",
    ],
)
def test_an_opioid_is_never_history_so_its_blockade_is_still_answered(question: str) -> None:
    q = understand_question(question)
    assert "opioid" in q.subjects


@pytest.mark.parametrize(
    "question",
    [
        "Can I take LDN with gabapentin?",
        "already on pregabalin, can I add LDN?",
        "I tried LDN but want to add pregabalin to it, ok?",
    ],
)
def test_a_medicine_taken_now_is_still_a_combination(question: str) -> None:
    q = understand_question(question)
    assert q.combination
    assert "ldn" in q.named and len(q.named) == 2


def test_a_medicine_named_twice_once_as_history_stays_asked() -> None:
    q = understand_question(
        "Failed gabapentin at 900 mg; can LDN be taken with gabapentin at 1800 mg?"
    )
    assert "gabapentin" in q.named


def test_adding_ldn_to_pregabalin_says_whether_then_how_ldn_starts_not_pregabalins_dose() -> None:
    answer = answer_question("Could LDN be added on to pregabalin for pudendal neuralgia?")
    text = " ".join(s.text for section in answer.sections.values() for s in section)
    assert answer.sections["from_the_guidelines"][0].text.startswith(
        "Yes, they can be taken together"
    )
    assert "1 to 2 mg" in text and "4.5 mg" in text
    assert "start 150 mg" not in text
    assert "angioedema" not in text


@pytest.mark.parametrize(
    "question",
    [
        "What is the evidence-based approach to using LDN in pudendal neuralgia?",
        "How do you use LDN in pudendal neuralgia?",
        "what do the guidelines say about low dose naltrexone for PN",
    ],
)
def test_clinician_shorthand_for_the_overview_gets_the_whole_overview(question: str) -> None:
    q = understand_question(question)
    assert q.overview
    for facet in (
        "dose",
        "timing",
        "trial",
        "side_effects",
        "non_drug",
        "alternatives",
        "evidence",
    ):
        assert facet in q.plan
