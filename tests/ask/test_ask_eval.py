"""Retrieval quality on the evaluation set: recall@5 >= 0.95, refusals exactly right."""

from __future__ import annotations

from typing import Any

from ldncare.ask import ask_index, search


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


def test_recall_at_5_is_at_least_95_percent(questions: list[dict[str, Any]]) -> None:
    recalls = []
    misses = []
    for item in questions:
        if item.get("out_of_scope"):
            continue
        expected = set(item["expected"])
        top5 = set(search(item["q"]).ranked_ids()[:5])
        recalls.append(len(expected & top5) / min(len(expected), 5))
        if recalls[-1] < 1:
            misses.append(item["q"])
    recall = sum(recalls) / len(recalls)
    assert recall >= 0.95, f"recall@5 {recall:.3f}; missed: {misses}"


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
