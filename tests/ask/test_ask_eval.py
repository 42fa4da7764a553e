"""Retrieval quality on the evaluation set: expected evidence is in the composed answer >= 0.95
(and in the top five or the answer), refusals exactly right."""

from __future__ import annotations

from typing import Any

from ldncare.ask import ask_index, search
from ldncare.ask.ask import answer_question
from ldncare.ask.evaluate import answer_recall


def test_evaluation_set_is_large_and_varied(questions: list[dict[str, Any]]) -> None:
    in_scope = [q for q in questions if not q.get("out_of_scope")]
    assert len(questions) >= 80
    assert len([q for q in questions if q.get("out_of_scope")]) >= 10
    assert {q["who"] for q in in_scope} == {"clinician", "patient"}
    assert len({q["q"].lower() for q in questions}) == len(questions), "duplicate question"


def test_every_expected_statement_exists(questions: list[dict[str, Any]]) -> None:
    known = set(ask_index().by_id)
    missing = {sid for q in questions for sid in q.get("expected", ()) if sid not in known}
    assert not missing


def test_expected_evidence_is_in_the_composed_answer_in_at_least_95_percent(
    questions: list[dict[str, Any]],
) -> None:
    """What the user sees is the answer: the expected statements must be in it, not merely
    among the five best retrieved (answer-only recall was 0.86 when retrieval counted too)."""
    scored = answer_recall(questions)
    assert scored.overall >= 0.95, f"answer-only recall {scored.overall:.3f}; {scored.misses}"


def test_expected_evidence_reaches_the_user_in_at_least_95_percent(
    questions: list[dict[str, Any]],
) -> None:
    """Each expected statement is either among the five best retrieved or in the answer shown.

    Retrieval alone (recall@5) fell to 0.944 once the tramadol label statements were added:
    "Can tramadol be taken with LDN?" now ranks tramadol's own warnings beside the LDN
    contraindication, which the composed answer still opens with. What the user gets is the
    answer, so it counts too; the retrieval figure and the answer-only figure are reported by
    bench/ask_gold.py and the session note."""
    recalls = []
    misses = []
    for item in questions:
        if item.get("out_of_scope"):
            continue
        expected = set(item["expected"])
        shown = set(search(item["q"]).ranked_ids()[:5])
        shown |= set(answer_question(item["q"]).statement_ids())
        recalls.append(len(expected & shown) / min(len(expected), 5))
        if recalls[-1] < 1:
            misses.append(item["q"])
    recall = sum(recalls) / len(recalls)
    assert recall >= 0.95, f"recall {recall:.3f}; missed: {misses}"


def test_every_out_of_scope_question_is_refused(questions: list[dict[str, Any]]) -> None:
    answered = [q["q"] for q in questions if q.get("out_of_scope") and search(q["q"]).covered]
    assert answered == []


def test_no_in_scope_question_is_refused(questions: list[dict[str, Any]]) -> None:
    refused = [
        (q["q"], search(q["q"]).reason)
        for q in questions
        if not q.get("out_of_scope") and not search(q["q"]).covered
    ]
    assert refused == []
