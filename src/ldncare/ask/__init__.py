"""Answer clinical questions from the evidence base: retrieval (BM25 + synonyms) then composition.

``answer_question`` is the one entry point the CLI, the API route and the web search box share.
"""

from __future__ import annotations

from ldncare.ask.ask import answer_question, ask_index, search, understand_question

__all__ = ["answer_question", "ask_index", "search", "understand_question"]
