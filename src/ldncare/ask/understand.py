"""Load and compile the question vocabulary (``vocabulary/questions.yaml``) for core.question.

Cue phrases go through the same word pipeline as questions (typo correction vocabulary, light
stemming), and the drug monographs add their own names as subjects, each with its class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import yaml

from ldncare.ask.synonyms import Normalizer, stem, words
from ldncare.core.question import Condition, Cue, Gap, Question, QuestionVocabulary, understand
from ldncare.errors import EvidenceError
from ldncare.evidence.models import FACETS
from ldncare.evidence.monographs import Monograph

__all__ = ["cue_words", "load_question_table", "question_vocabulary", "read_question"]

_NOT_FACETS = frozenset({"treatment", "safety", "comparison"})


def load_question_table() -> dict[str, Any]:
    node = resources.files("ldncare.evidence") / "data" / "vocabulary" / "questions.yaml"
    try:
        raw = yaml.safe_load(node.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise EvidenceError(f"questions.yaml: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise EvidenceError("questions.yaml: expected a mapping")
    return raw


def _cues(phrases: Iterable[Any]) -> tuple[Cue, ...]:
    out = [tuple(stem(w) for w in words(str(p))) for p in phrases]
    return tuple(dict.fromkeys(c for c in out if c))


def cue_words(table: Mapping[str, Any]) -> list[str]:
    """Every word of every cue, so the typo corrector can reach lay words too."""
    groups = [*(table.get("subjects") or {}).values(), *(table.get("facets") or {}).values()]
    groups += [c.get("cues") or [] for c in (table.get("conditions") or {}).values()]
    groups += [*(table.get("organ_parts") or {}).values(), table.get("out_of_scope") or []]
    groups += list((table.get("topic_cues") or {}).values())
    groups += [g.get("cues") or [] for g in (table.get("gaps") or {}).values()]
    return [w for g in groups for p in g for w in words(str(p))]


def question_vocabulary(
    table: Mapping[str, Any], monographs: Mapping[str, Monograph]
) -> QuestionVocabulary:
    """Compile the table; every facet named must be a statement facet (or ``treatment``)."""
    facets = {str(k): _cues(v or ()) for k, v in (table.get("facets") or {}).items()}
    plans = table.get("plans") or {}
    named = {*facets, *(plans.get("overview") or ()), *(plans.get("action") or ())}
    named |= {f for k, fs in (plans.get("follow") or {}).items() for f in [k, *(fs or ())]}
    named |= {f for g in (table.get("gaps") or {}).values() for f in g.get("facets") or ()}
    named |= set(plans.get("condition") or ())
    unknown = sorted(f for f in named if f not in FACETS and f not in _NOT_FACETS)
    if unknown:
        raise EvidenceError(f"questions.yaml: unknown facet {unknown[0]!r}")
    subjects = {str(k): _cues(v or ()) for k, v in (table.get("subjects") or {}).items()}
    members: dict[str, list[str]] = {}
    drug_class: dict[str, str] = {}
    for mono in monographs.values():
        names = [mono.id.replace("_", " "), mono.id.split("_")[0], mono.name.split()[0]]
        subjects[mono.id] = _cues(names)
        drug_class[mono.id] = mono.drug_class
        members.setdefault(mono.drug_class, []).append(mono.id)
    for cls, parts in (table.get("classes") or {}).items():
        for part in parts:
            members.setdefault(str(cls), []).extend([str(part), *members.get(str(part), [])])
    conditions = tuple(
        Condition(
            str(k), str(c["label"]), _cues(c.get("cues") or ()), bool(c.get("in_base", False))
        )
        for k, c in (table.get("conditions") or {}).items()
    )
    return QuestionVocabulary(
        subjects=subjects,
        facets=facets,
        conditions=conditions,
        yes_no_openers=frozenset(w for o in table.get("yes_no_openers") or () for w in words(o)),
        overview_plan=tuple(plans.get("overview") or ()),
        follow={str(k): tuple(v or ()) for k, v in (plans.get("follow") or {}).items()},
        action=tuple(plans.get("action") or ()),
        limits={str(k): int(v) for k, v in (plans.get("limit") or {}).items()},
        members={k: tuple(dict.fromkeys(v)) for k, v in members.items()},
        combination_words=frozenset(
            stem(w) for c in table.get("combination_words") or () for w in words(str(c))
        ),
        drug_class=drug_class,
        organ_parts={str(k): _cues(v or ()) for k, v in (table.get("organ_parts") or {}).items()},
        out_of_scope=_cues(table.get("out_of_scope") or ()),
        in_scope=_cues(table.get("in_scope_phrases") or ()),
        topic_cues={str(k): _cues(v or ()) for k, v in (table.get("topic_cues") or {}).items()},
        elliptic_yes_no=tuple(
            tuple(str(c).lower().split()) for c in table.get("elliptic_yes_no") or ()
        ),
        condition_plan=tuple(str(f) for f in plans.get("condition") or ()),
        class_words={str(k): _cues(w or ()) for k, w in (table.get("class_words") or {}).items()},
        points={str(k): str(v) for k, v in (table.get("points") or {}).items()},
        history_before=_cues(table.get("history_before") or ()),
        history_after=_cues(table.get("history_after") or ()),
        history_join=frozenset(
            stem(w) for c in table.get("history_join") or () for w in words(str(c))
        ),
        gaps=tuple(
            Gap(
                str(k),
                str(g["about"]),
                str(g["label"]),
                _cues(g.get("cues") or ()),
                tuple(str(f) for f in g.get("facets") or ()),
            )
            for k, g in (table.get("gaps") or {}).items()
        ),
    )


def read_question(
    text: str, normalizer: Normalizer, vocabulary: QuestionVocabulary, *, patient: bool = False
) -> Question:
    """Understand ``text``: its corrected words and its synonym-normalised words, matched."""
    keep = normalizer.synonyms.stopwords | normalizer.synonyms.no_correction

    def corrected(part: str) -> list[str]:
        return [stem(w if w in keep else normalizer.corrector.correct(w)) for w in words(part)]

    raw = corrected(text)
    normalised = [t.stem for t in normalizer.query_terms(text)]
    # The last sentence of several is the one that asks ("... no better. Should I keep going?").
    sentences = [p for p in _SENTENCE_END.split(text) if words(p)]
    asking = corrected(sentences[-1]) if len(sentences) > 1 else []
    return understand(text, raw, normalised, vocabulary, patient=patient, asking=asking)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
