"""The gold set: facet recall >= 95 %, key words present, no forbidden content, yes/no questions
answered in the first sentence, outside questions refused or labelled general."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ldncare.ask import ask_index
from ldncare.ask.evaluate import Summary, evaluate
from ldncare.evidence.models import FACETS

GOLD = Path(__file__).with_name("gold.yaml")


def gold_questions() -> list[dict[str, Any]]:
    return list(yaml.safe_load(GOLD.read_text(encoding="utf-8"))["questions"])


@pytest.fixture(scope="module")
def summary() -> Summary:
    return evaluate(gold_questions())


def test_gold_set_is_large_varied_and_well_formed() -> None:
    items = gold_questions()
    assert len(items) >= 120
    assert len({i["q"].lower() for i in items}) == len(items), "duplicate question"
    assert {i["who"] for i in items} == {"clinician", "patient"}
    assert sum(1 for i in items if i.get("out_of_scope")) >= 10
    for item in items:
        assert set(item.get("facets") or ()) <= set(FACETS), item["q"]
        assert item.get("facets") or item.get("out_of_scope"), item["q"]


def test_facet_recall_is_at_least_95_percent(summary: Summary) -> None:
    misses = [(s.question, sorted(set(s.required) - set(s.covered))) for s in summary.answered]
    misses = [m for m in misses if m[1]]
    assert summary.facet_recall() >= 0.95, misses


def test_key_words_of_each_intent_are_present(summary: Summary) -> None:
    misses = [(s.question, s.missing_words) for s in summary.items if s.missing_words]
    assert summary.word_recall() >= 0.95, misses


def test_no_answer_contains_forbidden_content(summary: Summary) -> None:
    assert [(s.question, s.forbidden) for s in summary.items if s.forbidden] == []


def test_openings_refusals_labels_and_sections_are_right(summary: Summary) -> None:
    assert [(s.question, s.errors) for s in summary.items if s.errors] == []


def test_every_sentence_of_every_gold_answer_is_a_cited_statement(summary: Summary) -> None:
    known = ask_index().by_id
    for s in summary.items:
        numbers = {r.number for r in s.answer.references}
        for sentence in s.answer.sentences():
            assert sentence.statement in known
            assert sentence.citations and set(sentence.citations) <= numbers
