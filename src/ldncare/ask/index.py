"""The BM25 index over the evidence base (statements plus drug monograph facts) and its ranking.

Ranking, in two stages:

1. **Relevance** — BM25 (bm25s, Okapi defaults) over the normalised words of each statement's
   text and topics. ``r = bm25 / best_bm25`` puts every score on a 0-1 scale for this question.
   Only statements with ``r >= RELEVANT`` count as relevant: evidence quality never pulls an
   unrelated statement into an answer.
2. **Evidence among the relevant** — ``final = r + W_QUALITY * q + W_RECENCY * y`` where
   ``q = 1 - rank / 7`` from ``EVIDENCE_RANK`` of the statement's strongest source (guideline 1,
   systematic review 0.86, RCT 0.71 ... expert review 0) and ``y`` scales the year of that
   strongest source from 2005 (0) to 2025 (1). The weights are small (at most 0.16 in all), so
   quality and recency reorder statements of similar relevance — a guideline or systematic
   review before a case series or an expert opinion — but cannot overturn a clearly better match.

Scope: a question is answered only if, after normalisation, it names a domain term (LDN,
pudendal neuralgia, a neuropathic-pain medicine ...) or most of its words occur in the evidence
base and the best BM25 score reaches ``MIN_SCORE``; otherwise it is "not covered" and the
closest covered topics are offered. The thresholds were calibrated on ``tests/ask/questions.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import bm25s
import numpy as np

from ldncare.ask.drug_facts import all_drug_statements
from ldncare.ask.synonyms import Normalizer, Synonyms, Term, words
from ldncare.evidence.models import EVIDENCE_RANK, Evidence, Source, Statement

RELEVANT = 0.3
#: Terms found in fewer than this share of the retrievable documents count as specific to a
#: question. The common terms it leaves are dose, drug, effect, effective, evidence, LDN,
#: naltrexone, opioid, pain and safety; tests/ask/test_ask_eval.py fails when a change to the
#: base moves a term across it (0.23 did once the drug warnings were added: "working", read as
#: "effective", became specific and pulled dosing statements into a response question).
SPECIFIC_DF = 0.21
W_QUALITY = 0.12
W_RECENCY = 0.04
MIN_SCORE = 2.5
MIN_COVERAGE = 0.8
#: Each further fact from the same drug monograph loses this much, so drug facts do not crowd
#: out the statements (a question naming tramadol should still reach the opioid rules).
DRUG_REPEAT_PENALTY = 0.15
_MAX_RANK = max(EVIDENCE_RANK.values())

_TOPIC_LABEL = {
    "ldn": "LDN",
    "pudendal-neuralgia": "pudendal neuralgia",
    "neuropathic-pain": "neuropathic pain medicines",
    "response": "judging response",
}
_CLASS_WORDS = {"tca": "tricyclic", "topical": "topical"}
DEFAULT_TOPICS = (
    "LDN: dosing and titration",
    "LDN: side effects",
    "LDN: safety (opioids, surgery, liver, kidney, pregnancy)",
    "pudendal neuralgia: diagnosis and management",
    "neuropathic pain medicines: first-line choices",
)


@dataclass(frozen=True)
class Document:
    statement: Statement
    quality: float
    recency: float


@dataclass(frozen=True)
class Hit:
    statement: Statement
    bm25: float
    relevance: float
    score: float


@dataclass(frozen=True)
class Retrieval:
    """What the index found for one question, best first."""

    question: str
    terms: tuple[Term, ...]
    covered: bool
    hits: tuple[Hit, ...]
    #: Hits below the relevance cut, in BM25 order (for evaluation and closest topics).
    others: tuple[Hit, ...] = ()
    closest_topics: tuple[str, ...] = ()
    reason: str = ""

    def ranked_ids(self) -> list[str]:
        return [h.statement.id for h in (*self.hits, *self.others)]


def strongest_source(statement: Statement, sources: dict[str, Source]) -> Source:
    cited = [sources[c] for c in statement.citations if c in sources]
    return min(cited, key=lambda s: (EVIDENCE_RANK[s.evidence_type], -s.year))


def topic_label(statement: Statement) -> str:
    topics = statement.topics
    if topics[0] == "drug" and len(topics) > 1:
        part = statement.id.rsplit(".", 1)[-1].replace("_", " ")
        return f"{topics[1].replace('_', ' ')}: {part}"
    head = _TOPIC_LABEL.get(topics[0], topics[0].replace("-", " "))
    return f"{head}: {topics[1].replace('-', ' ')}" if len(topics) > 1 else head


@dataclass
class AskIndex:
    """BM25 over statements and drug facts, with the normaliser that built it."""

    evidence: Evidence
    normalizer: Normalizer
    documents: tuple[Document, ...]
    retriever: bm25s.BM25
    vocabulary: frozenset[str]
    by_id: dict[str, Statement] = field(default_factory=dict)

    #: Index terms of each document, in document order.
    terms: tuple[frozenset[str], ...] = ()
    #: For drug facts, the terms naming the drug or its class; a question must use one of them.
    names: tuple[frozenset[str], ...] = ()

    def __post_init__(self) -> None:
        self._drug_mask = np.array([d.statement.topics[0] == "drug" for d in self.documents])
        # Direct yes/no answers only open an answer (core.question.select); never retrieved.
        self._answer_mask = np.array(["answer" in d.statement.facets for d in self.documents])
        # Term statistics count only the statements retrieval can return: the direct answers
        # restate them, so adding an opening must not change which words are "specific".
        df: dict[str, int] = {}
        retrievable = [t for t, a in zip(self.terms, self._answer_mask, strict=True) if not a]
        self._retrievable = len(retrievable)
        for doc_terms in retrievable:
            for term in doc_terms:
                df[term] = df.get(term, 0) + 1
        self._df = df

    @classmethod
    def build(
        cls, evidence: Evidence, synonyms: Synonyms, extra_words: Sequence[str] = ()
    ) -> AskIndex:
        """Index ``evidence``; ``extra_words`` (question cues) only widen typo correction."""
        statements = [
            *evidence.statements.values(),
            *all_drug_statements(evidence.monographs.values()),
        ]
        texts = [_index_text(s) for s in statements]
        normalizer = Normalizer.build(synonyms, texts, extra_words)
        corpus = [normalizer.document_terms(t) or ["_"] for t in texts]
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        documents = []
        for s in statements:
            best = strongest_source(s, evidence.sources)
            documents.append(
                Document(
                    statement=s,
                    quality=1 - EVIDENCE_RANK[best.evidence_type] / _MAX_RANK,
                    recency=min(max((best.year - 2005) / 20, 0.0), 1.0),
                )
            )
        return cls(
            evidence=evidence,
            normalizer=normalizer,
            documents=tuple(documents),
            retriever=retriever,
            vocabulary=frozenset(t for doc in corpus for t in doc),
            by_id={s.id: s for s in statements},
            terms=tuple(frozenset(doc) for doc in corpus),
            names=tuple(frozenset(normalizer.document_terms(_drug_name(s))) for s in statements),
        )

    def specific_terms(self, stems: Sequence[str]) -> list[str]:
        """Those of ``stems`` found in the base but in fewer than SPECIFIC_DF of its documents."""
        limit = SPECIFIC_DF * self._retrievable
        return [t for t in stems if 0 < self._df.get(t, 0) < limit]

    def containing(self, stems: Sequence[str]) -> list[Statement]:
        """The retrievable statements whose words include every one of ``stems``."""
        wanted = set(stems)
        return [
            d.statement
            for d, doc_terms, answer in zip(
                self.documents, self.terms, self._answer_mask, strict=True
            )
            if not answer and wanted <= doc_terms
        ]

    def unknown_terms(self, stems: Sequence[str]) -> list[str]:
        """Those of ``stems`` (words, not numbers) that no statement uses."""
        return [t for t in stems if t.isalpha() and len(t) > 3 and t not in self._df]

    def search(self, question: str) -> Retrieval:
        """Rank the evidence for ``question``."""
        terms = tuple(self.normalizer.query_terms(question))
        query = list(dict.fromkeys(t.stem for t in terms))
        # Numbers ("50 mg", "type 1") say nothing about whether the topic is covered.
        scoped = [t.stem for t in terms if t.scoped and not t.stem[:1].isdigit()]
        if not scoped:
            return self._refuse(question, terms, [], "no meaningful word in the question")
        scores = np.asarray(self.retriever.get_scores(query), dtype=float)
        scores = np.where(self._answer_mask, 0.0, scores)
        anchored = any(s in self.normalizer.synonyms.domain_terms for s in scoped)
        if not anchored:
            # Drug facts answer questions that name the drug or its class (both domain terms);
            # without one they would answer "high blood pressure" from a venlafaxine caution.
            scores = np.where(self._drug_mask, 0.0, scores)
        top = float(scores.max()) if scores.size else 0.0
        if top <= 0:
            return self._refuse(
                question, terms, [], "no word of the question is in the evidence base"
            )
        order = np.argsort(-scores, kind="stable")
        # A statement that matches only the question's common words ("LDN" is in a third of
        # the evidence base) is not relevant when the question also has a specific word.
        # Class words a brand or drug name added ("opioid" for tramadol) always count.
        specific = {
            q for q in query if 0 < self._df.get(q, 0) < SPECIFIC_DF * self._retrievable
        } | {t.stem for t in terms if not t.scoped}
        asked = set(query)
        hits: list[Hit] = []
        others: list[Hit] = []
        for i in order:
            bm25 = float(scores[i])
            if bm25 <= 0:
                break
            doc = self.documents[int(i)]
            relevance = bm25 / top
            score = relevance + W_QUALITY * doc.quality + W_RECENCY * doc.recency
            hit = Hit(doc.statement, bm25, relevance, score)
            named = self.names[int(i)]
            relevant = (
                relevance >= RELEVANT
                and (not specific or not specific.isdisjoint(self.terms[int(i)]))
                and (not named or not named.isdisjoint(asked))
            )
            (hits if relevant else others).append(hit)
        hits = _diversify(hits)
        known = sum(1 for s in scoped if s in self.vocabulary) / len(scoped)
        if not anchored and (known < MIN_COVERAGE or top < MIN_SCORE):
            reason = (
                f"{known:.0%} of the question's words are in the evidence base"
                if known < MIN_COVERAGE
                else f"best match too weak (BM25 {top:.2f} < {MIN_SCORE})"
            )
            return self._refuse(question, terms, [*hits, *others], reason)
        return Retrieval(
            question=question,
            terms=terms,
            covered=True,
            hits=tuple(hits),
            others=tuple(others),
            closest_topics=_closest(hits),
        )

    def _refuse(
        self, question: str, terms: tuple[Term, ...], near: list[Hit], reason: str
    ) -> Retrieval:
        near = sorted(near, key=lambda h: -h.bm25)
        return Retrieval(
            question=question,
            terms=terms,
            covered=False,
            hits=(),
            others=tuple(near),
            closest_topics=_closest(near) or DEFAULT_TOPICS,
            reason=reason,
        )


def _diversify(hits: list[Hit]) -> list[Hit]:
    seen: dict[str, int] = {}
    adjusted: list[Hit] = []
    for hit in sorted(hits, key=lambda h: -h.score):
        topics = hit.statement.topics
        if topics[0] == "drug" and len(topics) > 1:
            n = seen.get(topics[1], 0)
            seen[topics[1]] = n + 1
            if n:
                hit = Hit(
                    hit.statement, hit.bm25, hit.relevance, hit.score - DRUG_REPEAT_PENALTY * n
                )
        adjusted.append(hit)
    return sorted(adjusted, key=lambda h: -h.score)


def _closest(hits: Sequence[Hit], limit: int = 5) -> tuple[str, ...]:
    labels = dict.fromkeys(topic_label(h.statement) for h in hits)
    return tuple(list(labels)[:limit])


def _drug_name(statement: Statement) -> str:
    """Words naming a drug fact's drug and class ("" for an ordinary statement)."""
    topics = statement.topics
    if topics[0] != "drug" or len(topics) < 3:
        return ""
    return f"{topics[1].replace('_', ' ')} {_CLASS_WORDS.get(topics[2], topics[2])}"


def _index_text(statement: Statement) -> str:
    # Topics are indexed with the text: they name what a statement is about in the words a
    # question uses ("side-effects", "titration") even when the text itself does not.
    topics = " ".join(" ".join(words(t.replace("-", " "))) for t in statement.topics)
    return f"{statement.text} {topics}"
