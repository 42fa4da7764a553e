"""``answer_question``: retrieve the evidence for a question, then compose the answer.

The index is built once per process (about a tenth of a second) and cached; a warm question
takes about a millisecond. No language model is used: every sentence is a statement from the
evidence base.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ldncare.ask import semantic
from ldncare.ask.index import AskIndex, Retrieval, _index_text
from ldncare.ask.synonyms import load_synonyms
from ldncare.core.answer import Answer, compose_answer, not_covered
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence

#: Statements used in one answer (the synthesis takes the first two).
DEFAULT_TOP_K = 6
MAX_QUESTION_CHARS = 1000


@functools.cache
def ask_index() -> AskIndex:
    """The index over the shipped evidence base, built once per process."""
    return AskIndex.build(load_evidence(), load_synonyms())


@functools.cache
def _semantic_scorer() -> semantic.SemanticScorer:
    index = ask_index()
    return semantic.SemanticScorer([_index_text(d.statement) for d in index.documents])


def _check(question: str) -> str:
    text = " ".join(question.split())
    if not text:
        raise InvalidInput(
            "the question is empty; ask e.g. 'How do I titrate LDN?'", field="question"
        )
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            f"the question is {len(text)} characters long; "
            f"at most {MAX_QUESTION_CHARS} are accepted",
            field="question",
        )
    return text


def search(question: str, *, semantic_rerank: bool | None = None) -> Retrieval:
    """Rank the evidence base for ``question`` (what :func:`answer_question` composes from)."""
    text = _check(question)
    bonuses = None
    if semantic.requested(semantic_rerank) and semantic.available():
        bonuses = _semantic_scorer().bonuses(text)
    return ask_index().search(text, semantic=bonuses)


def answer_question(
    question: str,
    *,
    plan_contract: Mapping[str, Any] | None = None,
    top_k: int = DEFAULT_TOP_K,
    semantic_rerank: bool | None = None,
) -> Answer:
    """Answer ``question`` in the reference form; with ``plan_contract`` add the patient context."""
    if top_k < 1:
        raise InvalidInput(f"top_k must be at least 1, not {top_k}", field="top_k")
    found = search(question, semantic_rerank=semantic_rerank)
    text = " ".join(question.split())
    if not found.covered:
        return not_covered(text, found.closest_topics)
    statements = [h.statement for h in found.hits[:top_k]]
    return compose_answer(
        text, statements, ask_index().evidence.sources, plan_contract=plan_contract
    )
