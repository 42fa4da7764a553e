"""``answer_question``: retrieve the evidence for a question, then compose the answer.

The index is built once per process (about a tenth of a second) and cached; a warm question
takes about a millisecond. No language model is used: every sentence is a statement from the
evidence base.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ldncare.ask.index import AskIndex, Retrieval
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


def search(question: str) -> Retrieval:
    """Rank the evidence base for ``question`` (what :func:`answer_question` composes from)."""
    return ask_index().search(_check(question))


def answer_question(
    question: str,
    *,
    plan_contract: Mapping[str, Any] | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> Answer:
    """Answer ``question`` in the reference form; with ``plan_contract`` add the patient context."""
    if top_k < 1:
        raise InvalidInput(f"top_k must be at least 1, not {top_k}", field="top_k")
    found = search(question)
    text = " ".join(question.split())
    if not found.covered:
        return not_covered(text, found.closest_topics)
    statements = [h.statement for h in found.hits[:top_k]]
    return compose_answer(
        text, statements, ask_index().evidence.sources, plan_contract=plan_contract
    )
