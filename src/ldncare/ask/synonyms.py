"""Query and document normalisation for ``ldncare ask``: words, synonyms, typos, stems.

Questions and indexed statements go through the same pipeline, so "Cymbalta", "duloxetine"
and "an SNRI" meet on the same index terms:

1. lower-case, strip accents and apostrophes ("Hashimoto's" -> "hashimoto", "can't" -> "cant");
2. (questions only) correct typos of words of 5 letters or more against the vocabulary of the
   evidence base and the synonym table: edit distance 1 for 5-7 letters, 2 for 8 or more
   (optimal string alignment, so a swapped pair of letters counts as one edit);
3. rewrite synonym phrases to their canonical words, longest phrase first
   (``vocabulary/synonyms.yaml`` plus brand and class names from ``vocabulary/drugs.yaml``);
4. drop stopwords and reduce the rest to a light stem ("dreams" -> "dream").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ldncare.errors import EvidenceError

_UNITS = frozenset({"mg", "mcg", "g", "ml", "kg", "percent", "mmol", "units", "iu"})
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_APOSTROPHE = re.compile(r"['’`]s\b|['’`]")

#: Classes in drugs.yaml and the words a question about them should also search for.
_CLASS_WORDS: dict[str, tuple[str, ...]] = {
    "opioid": ("opioid",),
    "opioid_long_acting": ("opioid",),
    "opioid_antitussive": ("opioid", "cough"),
    "tramadol": ("opioid",),
    "buprenorphine": ("opioid",),
    "methadone": ("opioid",),
    "naltrexone": ("naltrexone",),
    "snri": ("snri",),
    "ssri": ("ssri",),
    "tca": ("tricyclic", "antidepressant"),
    "maoi": ("maoi",),
    "gabapentinoid": ("gabapentinoid",),
    "levothyroxine": ("thyroid",),
    "thyroid_hormone": ("thyroid",),
    "immunosuppressant": ("immunosuppressant", "immune"),
    "triptan": ("triptan",),
}

# Suffixes removed by the light stemmer, longest first; a stem keeps at least 4 letters.
_SUFFIXES = (
    "ations",
    "ation",
    "ating",
    "ities",
    "ity",
    "ates",
    "ated",
    "ate",
    "ings",
    "ing",
    "ness",
    "ments",
    "ment",
    "ies",
    "ied",
    "es",
    "ed",
    "ly",
    "s",
    "e",
)


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` without accents or apostrophes ("4.5" stays one word)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _WORD.findall(_APOSTROPHE.sub("", folded.lower()))


def stem(word: str) -> str:
    """A deliberately light stemmer: enough to join plurals and verb forms, nothing clever."""
    if len(word) < 5 or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            # "stopped", "stopping" -> "stop" (but "stress", "fall" keep their doubles)
            if suffix in {"ed", "ing"} and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    return word


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment edit distance; ``limit + 1`` once it is past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            best = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, prev2[j - 2] + 1)
            cur[j] = best
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


@dataclass
class TypoCorrector:
    """Symmetric-delete spelling correction over a fixed vocabulary (precomputed once)."""

    vocabulary: Mapping[str, int]
    _index: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for word in self.vocabulary:
            if len(word) < 4 or not word.isalpha():
                continue
            for key in _deletes(word, 2):
                self._index.setdefault(key, []).append(word)

    @staticmethod
    def max_edits(word: str) -> int:
        return 0 if len(word) < 5 else 1 if len(word) < 8 else 2

    def correct(self, word: str) -> str:
        """The closest vocabulary word within the allowed distance, or ``word`` unchanged."""
        limit = self.max_edits(word)
        if limit == 0 or word in self.vocabulary or not word.isalpha():
            return word
        candidates: set[str] = set()
        for key in _deletes(word, limit):
            candidates.update(self._index.get(key, ()))
        best: tuple[int, int, str] | None = None
        for cand in candidates:
            if cand[0] != word[0] or (
                len(word) < 8 and len(cand) == len(word) and cand[-1] != word[-1]
            ):
                # Typos rarely touch the first letter; and "tract" is not a typo of "track".
                continue
            dist = osa_distance(word, cand, limit)
            if dist > limit:
                continue
            # Closest first; among equals the word the evidence base uses most.
            rank = (dist, -self.vocabulary[cand], cand)
            if best is None or rank < best:
                best = rank
        return best[2] if best else word


@dataclass(frozen=True)
class Group:
    canonical: tuple[str, ...]
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Term:
    """One normalised index term; ``scoped`` is False for ``also`` words added by a synonym."""

    stem: str
    scoped: bool = True


@dataclass
class Synonyms:
    """The compiled synonym table, stopwords and domain words."""

    phrases: dict[tuple[str, ...], Group]
    stopwords: frozenset[str]
    domain_terms: frozenset[str]
    no_correction: frozenset[str] = frozenset()
    #: Every word (unstemmed) of every phrase, for the spelling corrector's vocabulary.
    lexicon: frozenset[str] = frozenset()
    max_phrase: int = 1

    def __post_init__(self) -> None:
        self.max_phrase = max((len(p) for p in self.phrases), default=1)

    def rewrite(self, tokens: list[str]) -> Iterator[Term]:
        """Replace synonym phrases (longest match first, on stems), drop stopwords, stem."""
        stems = [stem(w) for w in tokens]
        i = 0
        while i < len(tokens):
            for size in range(min(self.max_phrase, len(tokens) - i), 0, -1):
                group = self.phrases.get(tuple(stems[i : i + size]))
                if group is not None:
                    for word in group.canonical:
                        yield Term(stem(word))
                    for word in group.also:
                        yield Term(stem(word), scoped=False)
                    i += size
                    break
            else:
                word = tokens[i]
                i += 1
                if word not in self.stopwords:
                    yield Term(stems[i - 1])

    def vocabulary_words(self) -> Iterator[str]:
        yield from self.lexicon
        for group in self.phrases.values():
            yield from group.canonical
            yield from group.also


def _group(raw: Any, where: str) -> tuple[list[str], Group]:
    if not isinstance(raw, dict) or "canonical" not in raw:
        raise EvidenceError(f"{where}: a group needs 'canonical' and 'variants'")
    unknown = set(raw) - {"canonical", "variants", "also"}
    if unknown:
        raise EvidenceError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    canonical = str(raw["canonical"])
    variants = [str(v) for v in raw.get("variants") or []]
    return [canonical, *variants], Group(
        tuple(words(canonical)), tuple(w for a in raw.get("also") or [] for w in words(str(a)))
    )


def _drug_groups(drugs: Mapping[str, Any]) -> Iterator[tuple[str, Group]]:
    """Brand names and alternative names of every ingredient in drugs.yaml, with class words."""
    for name, entry in (drugs.get("ingredients") or {}).items():
        entry = entry or {}
        classes = entry.get("classes") or []
        also = tuple(dict.fromkeys(w for c in classes for w in _CLASS_WORDS.get(c, ())))
        canonical = tuple(words(str(name)))
        group = Group(canonical, tuple(w for w in also if w not in canonical))
        for alias in [name, *(entry.get("names") or []), *(entry.get("brands") or [])]:
            yield str(alias), group


def build_synonyms(table: Mapping[str, Any], drugs: Mapping[str, Any] | None = None) -> Synonyms:
    """Compile ``synonyms.yaml`` (and optionally ``drugs.yaml``) into a :class:`Synonyms`."""
    phrases: dict[tuple[str, ...], Group] = {}
    lexicon: set[str] = set()
    # Drug names first, so the hand-written table overrides them where both define a phrase.
    for alias, group in _drug_groups(drugs or {}):
        lexicon.update(words(alias))
        key = tuple(stem(w) for w in words(alias))
        if key:
            phrases[key] = group
    for i, raw in enumerate(table.get("groups") or []):
        aliases, group = _group(raw, f"synonyms.yaml groups[{i}]")
        for alias in aliases:
            lexicon.update(words(alias))
            key = tuple(stem(w) for w in words(alias))
            if key:
                phrases[key] = group
    stop = frozenset(w for s in table.get("stopwords") or [] for w in words(str(s)))
    domain = frozenset(stem(w) for d in table.get("domain_terms") or [] for w in words(str(d)))
    keep = frozenset(w for s in table.get("no_correction") or [] for w in words(str(s)))
    return Synonyms(
        phrases=phrases,
        stopwords=stop,
        domain_terms=domain,
        no_correction=keep,
        lexicon=frozenset(lexicon),
    )


def _read(name: str) -> Any:
    node = resources.files("ldncare.evidence") / "data" / "vocabulary" / name
    try:
        return yaml.safe_load(node.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise EvidenceError(f"vocabulary file {name} is missing") from None
    except yaml.YAMLError as exc:
        raise EvidenceError(f"{name}: not valid YAML ({exc})") from None


def load_synonyms() -> Synonyms:
    """The shipped synonym table merged with the drug vocabulary's brand and class names."""
    return build_synonyms(_read("synonyms.yaml"), _read("drugs.yaml"))


@dataclass
class Normalizer:
    """The whole pipeline: words -> typo correction -> synonyms -> stopwords -> stems."""

    synonyms: Synonyms
    corrector: TypoCorrector

    @classmethod
    def build(
        cls, synonyms: Synonyms, texts: Iterable[str], extra: Iterable[str] = ()
    ) -> Normalizer:
        counts: dict[str, int] = {}
        for text in texts:
            for word in words(text):
                counts[word] = counts.get(word, 0) + 1
        for word in [*synonyms.vocabulary_words(), *extra]:
            counts.setdefault(word, 0)
        return cls(synonyms=synonyms, corrector=TypoCorrector(counts))

    def document_terms(self, text: str) -> list[str]:
        return [t.stem for t in self.synonyms.rewrite(words(text))]

    def query_terms(self, text: str) -> list[Term]:
        raw = words(text)
        tokens = []
        for i, w in enumerate(raw):
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if w.isdigit() and 65 <= int(w) <= 110 and nxt not in _UNITS:
                # "my mum is 78", "I'm 70": a bare number in the range of ages in years.
                tokens.append("aged")
            elif w in self.synonyms.stopwords or w in self.synonyms.no_correction:
                tokens.append(w)
            else:
                tokens.append(self.corrector.correct(w))
        return list(self.synonyms.rewrite(tokens))
