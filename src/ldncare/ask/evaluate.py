"""Score answers against the gold set (``tests/ask/gold.yaml``): facet recall, key words, forbidden
content, yes/no openings, refusals and precision. Used by the gold test and ``bench/ask_gold.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ldncare.ask.ask import answer_question, ask_index
from ldncare.core.answer import Answer

#: The composed first Key Consideration names the best source; it serves every question.
_LEAD = "The highest-quality source"


@dataclass(frozen=True)
class Scored:
    question: str
    answer: Answer
    required: tuple[str, ...] = ()
    covered: tuple[str, ...] = ()
    missing_words: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    #: Problems other than facets and words: a wrong opening, an answer that should be refused.
    errors: tuple[str, ...] = ()
    #: Sentences (statement basis, not the lead-source line) and how many serve a required facet.
    sentences: int = 0
    on_topic: int = 0
    words: int = 0

    @property
    def recall(self) -> float:
        return len(self.covered) / len(self.required) if self.required else 1.0


@dataclass
class Summary:
    items: list[Scored] = field(default_factory=list)

    @property
    def answered(self) -> list[Scored]:
        return [s for s in self.items if s.required]

    def facet_recall(self) -> float:
        req = sum(len(s.required) for s in self.answered)
        return sum(len(s.covered) for s in self.answered) / req if req else 1.0

    def per_facet(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = {}
        for s in self.answered:
            for f in s.required:
                hit = out.setdefault(f, [0, 0])
                hit[1] += 1
                hit[0] += f in s.covered
        return {f: (h[0], h[1]) for f, h in sorted(out.items())}

    def precision(self) -> float:
        total = sum(s.sentences for s in self.answered)
        return sum(s.on_topic for s in self.answered) / total if total else 1.0

    def word_recall(self) -> float:
        total = sum(s.words for s in self.items)
        missing = sum(len(s.missing_words) for s in self.items)
        return 1 - missing / total if total else 1.0


def score(item: Mapping[str, Any]) -> Scored:
    """Answer one gold question and score it."""
    answer = answer_question(str(item["q"]))
    by_id = ask_index().by_id
    required = tuple(item.get("facets") or ())
    errors: list[str] = []
    if item.get("out_of_scope"):
        if answer.covered:
            errors.append("answered a question outside the evidence base")
        return Scored(str(item["q"]), answer, errors=tuple(errors))
    if not answer.covered:
        return Scored(str(item["q"]), answer, required, errors=("refused",))
    if item.get("general") and not answer.scope:
        errors.append("general answer not labelled")
    sentences = [s for s in answer.sentences() if s.basis == "statement"]
    body = [s for s in sentences if not s.text.startswith(_LEAD)]
    facets: set[str] = set()
    on_topic = 0
    for s in body:
        tags = set(by_id[s.statement].facets)
        facets |= tags
        on_topic += bool(tags & {*required, "answer", "overview"})
    # The plain "not covered" notes are part of what the reader sees.
    text = " ".join([*answer.not_covered_points, *(s.text for s in sentences)]).lower()
    must = [str(w) for w in item.get("must") or ()]
    first = item.get("first")
    lead = answer.sections.get("from_the_guidelines") or ()
    if first and not (lead and lead[0].text.startswith(str(first))):
        errors.append(f"first sentence does not open with {first!r}")
    if any(not answer.sections.get(k) for k in _SECTIONS):
        errors.append("a section is empty")
    return Scored(
        question=str(item["q"]),
        answer=answer,
        required=required,
        covered=tuple(f for f in required if f in facets),
        missing_words=tuple(w for w in must if w.lower() not in text),
        forbidden=tuple(str(w) for w in item.get("forbid") or () if str(w).lower() in text),
        errors=tuple(errors),
        sentences=len(body),
        on_topic=on_topic,
        words=len(must),
    )


_SECTIONS = ("from_the_guidelines", "key_considerations", "treatment_approach")


def evaluate(items: Iterable[Mapping[str, Any]]) -> Summary:
    return Summary([score(i) for i in items])


@dataclass(frozen=True)
class AnswerRecall:
    """Expected evidence in the composed answer only (what the user sees), over the evaluation
    set (``tests/ask/questions.yaml``); retrieval ranks do not count."""

    overall: float
    #: facet -> (expected statements shown, expected statements), by each statement's first facet.
    per_facet: dict[str, tuple[int, int]]
    misses: list[tuple[str, tuple[str, ...]]]


def answer_recall(items: Iterable[Mapping[str, Any]]) -> AnswerRecall:
    """Per question |expected ∩ answer| / min(|expected|, 5), averaged over in-scope questions."""
    by_id = ask_index().by_id
    recalls: list[float] = []
    per_facet: dict[str, list[int]] = {}
    misses: list[tuple[str, tuple[str, ...]]] = []
    for item in items:
        if item.get("out_of_scope"):
            continue
        expected = set(item["expected"])
        shown = set(answer_question(item["q"]).statement_ids())
        recalls.append(len(expected & shown) / min(len(expected), 5))
        for sid in sorted(expected):
            facet = by_id[sid].facets[0]
            counts = per_facet.setdefault(facet, [0, 0])
            counts[0] += sid in shown
            counts[1] += 1
        if expected - shown:
            misses.append((str(item["q"]), tuple(sorted(expected - shown))))
    overall = sum(recalls) / len(recalls) if recalls else 1.0
    return AnswerRecall(overall, {k: (v[0], v[1]) for k, v in sorted(per_facet.items())}, misses)
