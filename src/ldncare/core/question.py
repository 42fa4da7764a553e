"""Question understanding and facet plans for ``ldncare ask`` (pure: no I/O).

:func:`understand` reads a question (already split into stemmed words by the ask adapter) and
finds its **subjects** (LDN, a medicine or class, pudendal neuralgia or another condition, "this
patient") and the **facets** it asks about (dose, timing, side effects, warnings ...). From them
it builds the **plan**: the ordered facets a complete answer covers. :func:`select` then fills
the plan with statements tagged with those facets and subjects, most specific first.

The words and plans are data (``evidence/data/vocabulary/questions.yaml``), compiled into a
:class:`QuestionVocabulary` by the adapter; nothing here knows a word of English.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ldncare.evidence.models import Statement

Cue = tuple[str, ...]

#: Subjects that name a condition (context); every other subject names a medicine.
CONDITION_SUBJECTS = frozenset({"pn", "neuropathic_pain"})
#: Facets whose statements say what to do: they go to the Treatment Approach.
ACTION_FACETS = frozenset(
    {
        "dose",
        "timing",
        "trial",
        "monitoring",
        "response",
        "non_drug",
        "alternatives",
        "surgery",
        "organ",
    }
)
#: The topic that marks a boxed warning: it leads every list of warnings.
BOXED = "boxed-warning"
#: Lexical relevance (0-1) a fallback Treatment Approach statement needs to count as related.
RELATED = 0.3
#: Lexical relevance (0-1, the best match is 1) of the statements closest to a question.
NEAR = 0.9
#: The medicines ldncare offers besides LDN, named together ("the alternatives", "which pill").
OPTIONS = "options"
#: The opioid class: never "history" (an opioid may still be taken, and LDN blocks it), and,
#: named beside LDN, never a stand-in for its one monograph, tramadol.
_OPIOID = "opioid"
#: Topics whose statements answer only a question that names them.
_ASKED_ONLY_TOPICS = frozenset({"thyroid", "immune"})
#: The statement topic of the opioid rules (contraindication, blockade, lost tolerance).
_OPIOID_TOPIC = "opioids"
#: Facets that describe a medicine: asked of a class or of "the alternatives", they are answered
#: for each medicine in turn ("side effects of SNRIs": duloxetine's, then venlafaxine's).
PER_DRUG_FACETS = frozenset(
    {
        "warnings",
        "side_effects",
        "interactions",
        "pregnancy",
        "organ",
        "dose",
        "monitoring",
        "evidence",
    }
)
#: Topics a question names that outrank the boxed warning when a medicine's statements are
#: ordered ("I'm 70, which pill is safest?": the warning for older people first).
_PRIORITY_TOPICS = frozenset({"elderly"})
#: Topics that name the one point a question asks (seizures, stopping, pregnancy or
#: breastfeeding): an opening about another point of the same medicine does not answer it.
INTENT_TOPICS = frozenset({"seizures", "taper", "breastfed-baby", "unborn-baby"})
#: The statement topics that answer each of them.
_INTENT_ANSWERED_BY: Mapping[str, frozenset[str]] = {
    "seizures": frozenset({"seizures"}),
    "taper": frozenset({"taper", "stopping", "withdrawal"}),
    "breastfed-baby": frozenset({"breastfed-baby", "breastfeeding", "lactation"}),
    "unborn-baby": frozenset({"unborn-baby", "pregnancy"}),
}
#: Age in years at which the older-adult warnings (Beers Criteria) apply.
OLDER_ADULT_AGE = 65
_AGE = re.compile(
    r"\b(?:i'?m|i am|aged?|age of|is|she'?s|he'?s|patient of|woman of|man of)\s+(\d{2,3})\b"
    r"|\b(\d{2,3})[- ]?(?:years?|yrs?|yo|y/o)\b"
    r"|\bin (?:my|her|his|their) (\d)0s\b",
    re.IGNORECASE,
)
#: Cue groups that are not facets of their own.
TREATMENT = "treatment"
OVERVIEW = "overview"
ANSWER = "answer"
#: Cue groups that ask for a facet only when nothing more specific is asked.
_WEAK = {"safety": "warnings"}
#: Cue groups that ask for several facets ("LDN versus amitriptyline": evidence, alternatives).
_EXPANDS = {"comparison": ("evidence", "alternatives")}
#: Facets that may accompany an overview cue without making the question a specific one.
_OVERVIEW_COMPANIONS = frozenset({OVERVIEW, TREATMENT, "evidence"})
#: Facets a kidney or liver question replaces: its adjusted-dose and organ statements answer
#: them, and the usual dosing and titration must not lead (or appear at all).
_ORGAN_REPLACES = frozenset({"dose", "timing", "trial", "diagnosis"})


@dataclass(frozen=True)
class Condition:
    id: str
    label: str
    cues: tuple[Cue, ...]
    #: Conditions the LDN trials studied (fibromyalgia ...): answered, but without PN care.
    in_base: bool = False


@dataclass(frozen=True)
class Gap:
    """A point the evidence base holds nothing citable on ("a missed dose of LDN")."""

    id: str
    #: The subject it concerns: only a question about that subject asks it.
    about: str
    #: Completes "The ldncare evidence base has no cited statement on ...".
    label: str
    cues: tuple[Cue, ...]
    #: The facets that bear on it and are answered beside the plain "not covered".
    facets: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuestionVocabulary:
    """The compiled cue table: every cue is a tuple of stemmed words."""

    subjects: Mapping[str, tuple[Cue, ...]]
    facets: Mapping[str, tuple[Cue, ...]]
    conditions: tuple[Condition, ...]
    yes_no_openers: frozenset[str]
    overview_plan: tuple[str, ...]
    follow: Mapping[str, tuple[str, ...]]
    action: tuple[str, ...]
    limits: Mapping[str, int]
    #: Words that join two named medicines into a question about combining them.
    combination_words: frozenset[str] = frozenset()
    #: A class subject and the subjects it stands for ("snri" -> duloxetine, venlafaxine).
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: A medicine and its class ("duloxetine" -> "snri").
    drug_class: Mapping[str, str] = field(default_factory=dict)
    #: Organ words ("kidney": renal, eGFR ...): an organ question keeps to the organ asked.
    organ_parts: Mapping[str, tuple[Cue, ...]] = field(default_factory=dict)
    #: Words of topics ldncare does not cover (cost, cannabis ...): the question is refused.
    out_of_scope: tuple[Cue, ...] = ()
    #: Phrases that keep a question in scope although they hold an out-of-scope word.
    in_scope: tuple[Cue, ...] = ()
    #: Words that name a statement topic ("morning"): an opening about it is preferred.
    topic_cues: Mapping[str, tuple[Cue, ...]] = field(default_factory=dict)
    #: Points the evidence base does not cover (missed doses ...): said so plainly.
    gaps: tuple[Gap, ...] = ()
    #: Lower-case words that open an elliptical yes/no clause at the end of a question
    #: ("..., worth a go?", "... together ok?" has it last): "worth", "any good", "ok" ...
    elliptic_yes_no: tuple[tuple[str, ...], ...] = ()
    #: The plan for whether LDN helps in a condition the trials studied (fibromyalgia ...): that
    #: condition's evidence first, then how it is used; no pudendal care, no generic overview.
    condition_plan: tuple[str, ...] = ()
    #: A class and the cues that name the class itself ("opioids", "painkillers"): named by
    #: another of its cues (a member without a monograph: "methadone"), it stands for no member.
    class_words: Mapping[str, tuple[Cue, ...]] = field(default_factory=dict)
    #: Statement topics so specific that a question naming one asks for that fact alone
    #: ("half-life"), each with the label said when the subject asked has no statement on it.
    points: Mapping[str, str] = field(default_factory=dict)
    #: Words before (or after) a medicine that put it in the patient's past ("failed
    #: pregabalin", "gabapentin didn't work"), and the words that may stand between the
    #: medicines of one such history ("failed pregabalin and duloxetine").
    history_before: tuple[Cue, ...] = ()
    history_after: tuple[Cue, ...] = ()
    history_join: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Question:
    """What was asked: subjects, facets and the plan a complete answer follows."""

    text: str
    subjects: tuple[str, ...]
    asked: tuple[str, ...]
    plan: tuple[str, ...]
    yes_no: bool = False
    overview: bool = False
    #: A condition other than PN that the question names (id and label).
    condition: str | None = None
    condition_label: str | None = None
    #: True when that condition is outside the evidence base (a general, labelled answer).
    outside: bool = False
    #: Two medicines named together: a question about combining them.
    combination: bool = False
    #: A comparison ("nortriptyline or amitriptyline?"): no yes/no opening fits it.
    comparison: bool = False
    #: Normalised words that named no subject, facet or condition ("drive", "naloxone").
    unmatched: tuple[str, ...] = ()
    #: The medicines the question itself named (before classes and members were added).
    named: tuple[str, ...] = ()
    patient: bool = False
    #: The organs a kidney or liver question names ("kidney", "liver").
    organ_parts: tuple[str, ...] = ()
    #: The question names a topic outside the evidence base (cost, cannabis ...).
    off_topic: bool = False
    #: The words that made it off-topic ("drink").
    off_topic_words: tuple[str, ...] = ()
    #: Only general safety words ask for the warnings ("Is LDN dangerous?").
    general_safety: bool = False
    #: Statement topics the question's words name ("morning", "sleep").
    topics: tuple[str, ...] = ()
    #: A class or "the alternatives" asked about a property: the medicines answered in turn.
    per_drug: tuple[str, ...] = ()
    #: The uncovered points the question asks about (labels of :class:`Gap`).
    gaps: tuple[str, ...] = ()
    #: A choice between two things ("in the morning or at night?"): no yes/no, but an opening
    #: about the topic its words name may answer which.
    choice: bool = False

    @functools.cached_property
    def medicines(self) -> frozenset[str]:
        return frozenset(s for s in self.subjects if s not in CONDITION_SUBJECTS)

    def to_contract(self) -> dict[str, object]:
        out: dict[str, object] = {
            "subjects": list(self.subjects),
            "asked": list(self.asked),
            "plan": list(self.plan),
            "yes_no": self.yes_no,
            "overview": self.overview,
        }
        if self.condition is not None:
            out["condition"] = self.condition_label
        return out


def _find(sequence: Sequence[str], cues: Mapping[str, tuple[Cue, ...]]) -> list[tuple[int, str]]:
    """(position, key) of every cue in ``sequence``; longer cues claim their words first."""
    return [(i, key) for i, key, _ in _find_cues(sequence, cues)]


def _find_cues(
    sequence: Sequence[str], cues: Mapping[str, tuple[Cue, ...]]
) -> list[tuple[int, str, Cue]]:
    # A cue whose first word is not in the question cannot match: most are skipped at once.
    present = set(sequence)
    found: list[tuple[int, int, int, str]] = []
    rank = 0
    for key, key_cues in cues.items():
        for cue in key_cues:
            rank += 1
            if not cue or cue[0] not in present:
                continue
            n = len(cue)
            for i in range(len(sequence) - n + 1):
                if sequence[i] == cue[0] and tuple(sequence[i : i + n]) == cue:
                    found.append((i, n, rank, key))
    taken: set[int] = set()
    out: list[tuple[int, str, Cue]] = []
    # (longer first; at one place and length, the cue listed first)
    for i, n, _, key in sorted(found, key=lambda f: (-f[1], f[0], f[2])):
        span = set(range(i, i + n))
        if span & taken:
            continue
        taken |= span
        out.append((i, key, tuple(sequence[i : i + n])))
    return sorted(out)


#: Words that, after "will", "can" ..., make a yes/no clause ("... will it help?").
_PRONOUNS = frozenset({"i", "it", "you", "she", "he", "we", "they", "this", "that", "my"})
#: Words that join a medicine ldncare does not know to one it does ("LDN with sertraline?").
_JOIN = frozenset({"with", "and", "plus", "together", "alongside"})
#: Words that open the asking part of a question: "how long", "what dose", "when should".
_INTERROGATIVES = frozenset(
    # (with the lay spellings the typo corrector leaves alone: "hw much", "wat dose")
    {"how", "what", "when", "which", "why", "who", "whether", "hw", "wat", "wot", "wht", "whn"}
)


def _asked_facets(sequence: Sequence[str], cues: Mapping[str, tuple[Cue, ...]]) -> list[str]:
    """Facets in order, those the question's asking phrase names first ("My physio suggested
    LDN - how long until it works?" asks about trial length before physiotherapy)."""
    found = _find_cues(sequence, cues)
    asking = [k for _, k, cue in found if cue[0] in _INTERROGATIVES]
    return list(dict.fromkeys([*asking, *(k for _, k, _ in found)]))


def _mask(sequence: Sequence[str], cues: Mapping[str, tuple[Cue, ...]]) -> list[str]:
    out = list(sequence)
    found = _find(sequence, cues)
    for i, key in found:
        n = max(len(c) for c in cues[key] if tuple(sequence[i : i + len(c)]) == c)
        out[i : i + n] = [""] * n
    return out


def _ordered_keys(
    raw: Sequence[str], normalised: Sequence[str], cues: Mapping[str, tuple[Cue, ...]]
) -> list[str]:
    """Keys found in the question's own words first (in order), then in its normalised words."""
    keys = [k for _, k in _find(raw, cues)] + [k for _, k in _find(normalised, cues)]
    return list(dict.fromkeys(keys))


_DURATION = re.compile(
    r"\b(\d{1,2}|a|one|two|three|four|six)\s*(weeks?|wks?|months?|mths?)\b", re.IGNORECASE
)
_NUMBER_WORDS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "six": 6}
#: Weeks of LDN after which no response is a reason to review it (the 2 to 3 month trial).
FULL_TRIAL_WEEKS = 8


def stated_weeks(text: str) -> int | None:
    """How long the question says LDN has been taken ("6 wks", "3 months"), in weeks."""
    match = _DURATION.search(text)
    if match is None:
        return None
    count = _NUMBER_WORDS.get(match.group(1).lower()) or int(match.group(1))
    return count * (4 if match.group(2).lower().startswith("m") else 1)


def stated_age(text: str) -> int | None:
    """The age a question states ("I'm 70", "a 72-year-old", "in my 80s"), if any."""
    for match in _AGE.finditer(text):
        if match.group(3):
            return int(match.group(3)) * 10
        age = int(match.group(1) or match.group(2))
        if 18 <= age <= 110:
            return age
    return None


def _history(raw: Sequence[str], v: QuestionVocabulary) -> tuple[set[str], set[int]]:
    """The medicines ``raw`` puts in the patient's past, and the positions of the words that do.

    "Failed pregabalin and duloxetine, is LDN worth trying?": pregabalin and duloxetine are what
    was tried, not what is asked about. A medicine named anywhere else in the question is not
    history; an opioid never is (it may still be taken, and LDN blocks it).
    """
    if not (v.history_before or v.history_after):
        return set(), set()
    drugs = {
        i: (key, len(cue))
        for i, key, cue in _find_cues(raw, v.subjects)
        if key not in CONDITION_SUBJECTS and key not in {"ldn", "patient", OPTIONS}
    }
    starts = set(drugs)
    ends = {i + n - 1: i for i, (_, n) in drugs.items()}
    past: dict[int, str] = {}
    words_at: set[int] = set()

    def walk(at: int, step: int) -> None:
        while 0 <= at < len(raw):
            if step > 0 and at in starts:
                past[at] = drugs[at][0]
                at += drugs[at][1]
            elif step < 0 and at in ends:
                past[ends[at]] = drugs[ends[at]][0]
                at = ends[at] - 1
            elif raw[at] in v.history_join:
                at += step
            else:
                return

    for i, _, cue in _find_cues(raw, {"before": v.history_before}):
        words_at.update(range(i, i + len(cue)))
        walk(i + len(cue), 1)
    for i, _, cue in _find_cues(raw, {"after": v.history_after}):
        if i - 1 in ends:
            words_at.update(range(i, i + len(cue)))
            walk(i - 1, -1)
    kept = {k for i, (k, _) in drugs.items() if i not in past}
    history = {
        k
        for k in past.values()
        if k not in kept and k != _OPIOID and v.drug_class.get(k) != _OPIOID
    }
    return history, words_at if history else set()


def understand(
    text: str,
    raw: Sequence[str],
    normalised: Sequence[str],
    vocabulary: QuestionVocabulary,
    *,
    patient: bool = False,
    asking: Sequence[str] = (),
) -> Question:
    """Subjects, asked facets and plan of one question.

    ``raw`` is the question's words after typo correction, stemmed, in order; ``normalised`` the
    same after the synonym table rewrote phrases to their canonical words (stopwords dropped).
    ``asking`` is the raw words of its last sentence when it has several ("been on LDN 4.5 mg for
    3 months and no better. Should I keep going?"): the facets it names are asked first.
    """
    v = vocabulary
    subjects = _ordered_keys(raw, normalised, v.subjects)
    if _OPIOID in subjects and all(
        raw[i + len(cue) : i + len(cue) + 1] == ["withdrawal"]
        for i, key, cue in _find_cues(raw, v.subjects)
        if key == _OPIOID
    ):
        # "What does precipitated opioid withdrawal look like?" names a reaction, not an opioid
        # medicine taken (review round 5, n05: it opened "No: must not be taken with opioids").
        subjects = [s for s in subjects if s != _OPIOID]
    history: set[str] = set()
    if "ldn" in subjects:
        # A question about LDN that names what was tried before asks about LDN alone.
        history, history_at = _history(raw, v)
        if history:
            raw = ["" if i in history_at else w for i, w in enumerate(raw)]
            # (with the class the synonym table names them by: "pregabalin" is a gabapentinoid)
            history |= {c for c, ms in v.members.items() if history & set(ms)} - {
                k for _, k in _find(raw, v.subjects)
            }
            kept_cues = {k: c for k, c in v.subjects.items() if k not in history}
            subjects = [s for s in _ordered_keys(raw, normalised, kept_cues) if s not in history]
            history_cues = {"h": (*v.history_before, *v.history_after)}
            normalised = [w for w in _mask(normalised, history_cues) if w]
            normalised = [w for w in _mask(normalised, {k: v.subjects[k] for k in history}) if w]
            raw = _mask(raw, {k: v.subjects[k] for k in history})
    condition: Condition | None = None
    if "pn" not in subjects:
        for c in v.conditions:
            if _find(raw, {c.id: c.cues}) or _find(normalised, {c.id: c.cues}):
                condition = c
                break
    has_patient = patient or "patient" in subjects
    subjects = [s for s in subjects if s != "patient"]
    options = OPTIONS in subjects
    # The medicines named, a class counted only when none of its members is named.
    named = [s for s in subjects if s not in CONDITION_SUBJECTS]
    named = [s for s in named if set(v.members.get(s, ())).isdisjoint(named)]
    # A class named by one of its own members ldncare has no monograph for ("methadone" is an
    # opioid) does not stand for the members it does have: methadone is not tramadol.
    by_member = {
        key
        for words in (raw, normalised)
        for _, key, cue in _find_cues(words, v.subjects)
        if key in v.class_words and cue not in v.class_words[key]
    }
    expanded: list[str] = []
    for s in subjects:
        expanded.append(s)
        members = v.members.get(s, ())
        if s in by_member:
            continue
        if set(members).isdisjoint(subjects):
            # "SNRIs" stands for duloxetine and venlafaxine, unless one of them was named.
            expanded.extend(members)
        if s in v.drug_class:
            expanded.append(v.drug_class[s])
    if condition is not None:
        # Another condition: pudendal-neuralgia care must not leak into the answer.
        expanded = [s for s in expanded if s != "pn"]
    subjects = list(dict.fromkeys(expanded))

    gap_cues = {g.id: g.cues for g in v.gaps}
    # (the question's own words, before an uncovered point's cue words are taken out: "can my
    # GP prescribe LDN?" still opens with "can")
    spoken = list(raw)
    # The words with the subjects' own taken out: "miss my LDN dose" is "miss my dose".
    closed = [w for w in _mask(raw, v.subjects) if w]
    found_gaps = [
        g
        for g in v.gaps
        if g.about in subjects
        and any(_find(words, {g.id: g.cues}) for words in (raw, normalised, closed))
    ]
    if found_gaps:
        # "What if I miss a dose?" is not a dose question: the gap's words ask nothing else.
        raw = _mask(raw, gap_cues)
        normalised = [w for w in _mask(normalised, gap_cues) if w]
    # Words that named a subject ask nothing ("low dose naltrexone" is not a dose question).
    raw_left = _mask(raw, v.subjects)
    # The masked words close up: "how does low dose naltrexone work" asks "how does ... work".
    asked = _asked_facets([w for w in raw_left if w], v.facets)
    if not asked and not found_gaps:
        # Only when its own words ask nothing: the synonym-normalised words (a question about an
        # uncovered point asks nothing else: its gap's facets answer beside it).
        asked = _asked_facets(_mask(normalised, v.subjects), v.facets)
    if asking and len(asking) < len(raw):
        # The sentence that asks comes first; the sentences before it give the context.
        last = _asked_facets([w for w in _mask(asking, v.subjects) if w], v.facets)
        if last:
            # (the sentences before it only give the context: "on 4.5 mg" asks no dose)
            context = asked
            asked = [f for f in last if f in asked] or asked
            if "pregnancy" in context and "pregnancy" not in asked:
                # ... but a pregnancy told in the context decides the answer ("I'm pregnant and
                # have been on LDN for 6 months. Should I stop?": review round 5, n12).
                # (whether to stop is then a pregnancy question, not one of trial length)
                asked = ["pregnancy", *(f for f in asked if f not in {"trial", "response"})]
    comparison = "comparison" in asked
    cond_cues = {c.id: c.cues for c in v.conditions}
    unmatched = [w for w in _mask(_mask(_mask(normalised, v.subjects), v.facets), cond_cues) if w]
    combination = len(named) >= 2 and not set(raw_left).isdisjoint(v.combination_words)
    if not asked and len(named) == 1 and unmatched and not _JOIN.isdisjoint(raw_left):
        # "LDN with sertraline ok?": a medicine ldncare does not know, taken with one it does.
        asked = ["interactions"]
        combination = True
    if len(named) >= 2 and "or" in raw and not combination:
        # "Nortriptyline or venlafaxine for an older patient?": which one, and on what it depends.
        comparison = True
        asked = ["alternatives", *(f for f in asked if f != "alternatives")]
    if combination:
        # "tramadol with LDN", "duloxetine and pregabalin": a question about the combination.
        asked = ["interactions", *(f for f in asked if f != "interactions")]
    for weak, facets in _EXPANDS.items():
        if weak in asked:
            at = asked.index(weak)
            asked[at : at + 1] = [f for f in facets if f not in asked]
    specific = [f for f in asked if f not in _WEAK]
    # "Is it safe in pregnancy?" asks about pregnancy; "is it safe?" asks for the warnings.
    general_safety = bool(set(asked) & set(_WEAK)) and not specific
    asked = [_WEAK.get(f, f) for f in asked if f not in _WEAK or not specific]
    per_drug: list[str] = []
    if comparison and len(named) >= 2:
        # "Is LDN better than gabapentin?": the evidence for each side, in turn.
        asked = [*asked, *(["evidence"] if "evidence" not in asked else [])]
        per_drug.extend(named)
    for g in found_gaps:
        # The facets that bear on the uncovered point are answered beside it.
        asked += [f for f in g.facets if f not in asked]
    if options and not PER_DRUG_FACETS & set(asked):
        # "What are the other options?": the alternatives, not a tour of every medicine.
        subjects = [s for s in subjects if s != OPTIONS and s not in v.members.get(OPTIONS, ())]
        named = [s for s in named if s != OPTIONS]
        asked = ["alternatives", *(f for f in asked if f != "alternatives")]
    else:
        # (a class named by a member without a monograph stands for none of its members: the
        # warnings asked of "her fentanyl patch" are not tramadol's, review round 5, n25)
        # (nor do "opioids" named with LDN stand for tramadol: "will LDN cause withdrawal if I
        # have never taken opioids?" is about LDN's blockade, not tramadol's warnings, r6 m11)
        classes = [
            s
            for s in named
            if s not in by_member
            and not (s == _OPIOID and "ldn" in named)
            and any(m in v.drug_class for m in v.members.get(s, ()))
        ]
        if combination or set(named) - {*classes, "ldn"}:
            # "Pregabalin with opioids": a question about one medicine and a class together.
            classes = []
        if classes and "ldn" not in named and set(asked) <= {OVERVIEW, TREATMENT}:
            # "Which antidepressants help nerve pain?": where the class stands among the options,
            # and the evidence for each of its medicines.
            asked = ["alternatives", "evidence"]
        if classes and PER_DRUG_FACETS & set(asked):
            # A class named without any of its members ("side effects of SNRIs", "boxed warnings
            # of the alternatives"): each member medicine is answered in turn, not LDN.
            for s in classes:
                per_drug.extend(m for m in v.members.get(s, ()) if m in v.drug_class)
            if options:
                subjects = [s for s in subjects if s != "ldn"]
                named = [s for s in named if s != "ldn"]
    topics = list(
        dict.fromkeys(
            k
            for words in (raw, normalised, [w for w in raw_left if w])
            for _, k in _find(words, v.topic_cues)
        )
    )
    if condition is not None and condition.in_base:
        # "Does LDN work for fibromyalgia?": that condition's statements come first.
        topics.append(condition_topic(condition.id))
    weeks = stated_weeks(text)
    if weeks is not None and weeks < FULL_TRIAL_WEEKS and "no-response" in topics:
        # "6 weeks and no change": too early to judge, not a question about giving up.
        topics.remove("no-response")
    age = stated_age(text)
    if age is not None and age >= OLDER_ADULT_AGE and "elderly" not in topics:
        topics.append("elderly")
    opener = next((w for w in spoken if w not in {"so", "hi", "hello", "please", "and", "but"}), "")
    # "My bum hurts when I sit, will LDN help?": a yes/no clause after a statement.
    subject_words = {c[0] for cues in v.subjects.values() for c in cues} | _PRONOUNS
    # "... what should I do?" is not one: an interrogative just before the verb asks which.
    later = opener not in _INTERROGATIVES | {"where"} and any(
        w in v.yes_no_openers and raw[i + 1] in subject_words and raw[i - 1] not in _INTERROGATIVES
        for i, w in enumerate(raw[1:-1], 1)
    )
    # "GP here - patient with PN asking about LDN, worth a go?": an elliptical yes/no clause.
    tail = re.split(r"[,;:\u2013\u2014]|\s-\s", text.strip().rstrip("?!. "))[-1].lower().split()
    elliptic = text.strip().endswith("?") and any(
        # "..., worth a go?" opens its last clause with one; "... together ok?" ends with one.
        tuple(tail[: len(cue)]) == cue or tuple(tail[-len(cue) :]) == cue
        for cue in v.elliptic_yes_no
    )
    organ_parts = tuple(
        dict.fromkeys(k for _, k in [*_find(raw, v.organ_parts), *_find(normalised, v.organ_parts)])
    )
    # (what naltrexone is approved for, "alcohol dependence", is not an off-topic "alcohol")
    kept = {"in": v.in_scope}
    off_words = [
        w
        for words in (_mask(raw, kept), _mask(normalised, kept))
        for i, _, cue in _find_cues(words, {"x": v.out_of_scope})
        for w in cue
    ]
    off_topic = bool(v.out_of_scope and off_words)
    return _planned(
        Question(
            text=text,
            subjects=tuple(subjects),
            asked=tuple(asked),
            plan=(),
            # "... at night or in the morning?" asks which, not whether.
            yes_no=(opener in v.yes_no_openers or later or elliptic) and "or" not in raw[-4:],
            choice=(opener in v.yes_no_openers or later) and "or" in raw[-4:],
            condition=condition.id if condition else None,
            condition_label=condition.label if condition else None,
            outside=condition is not None and not condition.in_base,
            combination=combination,
            comparison=comparison,
            unmatched=tuple(unmatched),
            named=tuple(named),
            patient=has_patient,
            organ_parts=organ_parts,
            off_topic=off_topic,
            off_topic_words=tuple(dict.fromkeys(off_words)),
            general_safety=general_safety,
            topics=tuple(topics),
            per_drug=tuple(dict.fromkeys(per_drug)),
            gaps=tuple(g.label for g in found_gaps),
        ),
        v,
    )


def condition_topic(condition: str) -> str:
    """The statement topic of a condition id ("diabetic_neuropathy" -> "diabetic-neuropathy")."""
    return condition.replace("_", "-")


#: Statement topics naming the condition a trial studied: a question about one condition is
#: not answered with another's trials.
TRIAL_CONDITION_TOPICS = frozenset({"fibromyalgia", "diabetic-neuropathy", "arthritis"})
#: The topic of statements that say what to do about a side effect.
MANAGE = "manage"


def manages(question: Question) -> bool:
    """Whether the question asks what to do about a side effect ("what do I do?", "how do I
    manage ...?", "help"), not which side effects there are."""
    return MANAGE in question.topics and "side_effects" in question.asked


def with_subjects(
    question: Question,
    subjects: Sequence[str],
    facets: Sequence[str],
    vocabulary: QuestionVocabulary,
) -> Question:
    """Plan again a question that named no subject, with subjects (and, if it asked none,
    facets) borrowed from the statement that matches it best."""
    asked = question.asked or tuple(f for f in facets if f not in {ANSWER, OVERVIEW})[:1]
    return _planned(replace(question, subjects=tuple(subjects), asked=tuple(asked)), vocabulary)


def _planned(question: Question, v: QuestionVocabulary) -> Question:
    asked = list(question.asked)
    medicines = question.medicines
    if not asked and question.subjects and not medicines:
        # "What is pudendal neuralgia?": names only a condition and asks nothing more.
        asked = ["diagnosis"]
    if "settle" in question.topics and "side_effects" in asked:
        # "How long until the side effects go away?" asks whether they settle, not how long LDN
        # takes to work.
        asked = ["side_effects", *(f for f in asked if f not in {"side_effects", "trial"})]
    if "thyroid" in question.topics and "ldn" in medicines:
        # "LDN in Hashimoto's on levothyroxine - is a dose adjustment needed?": the thyroid dose
        # is asked about, not LDN's titration.
        asked = ["interactions", *(f for f in asked if f in {"monitoring", "warnings"})]
    if "washout" in question.topics and ("interactions" in asked or medicines):
        # "How long must someone be off methadone before starting LDN?": the wait before the
        # first dose, not how long LDN takes to work.
        # ("coming off oxycodone" dates the wait; it does not ask how to taper the opioid)
        asked = ["interactions", *(f for f in asked if f == "warnings")]
        question = replace(
            question, topics=tuple(t for t in question.topics if t not in {"taper", "stopping"})
        )
    if asked[:1] == ["trial"] and "trial-length" in question.topics:
        # "When should LDN be stopped for lack of efficacy?" asks when to give up, not how to
        # taper it.
        question = replace(
            question, topics=tuple(t for t in question.topics if t not in {"taper", "stopping"})
        )
    if "surgery" in asked:
        # "I have surgery next month": the month dates the operation, it asks no trial length;
        # "will LDN interfere with my anaesthetic?" asks about the operation first.
        asked = [f for f in asked if f not in {"trial", "response"}]
        if "interactions" in asked:
            asked = ["surgery", *(f for f in asked if f != "surgery")]
    if "organ" in asked:
        # "Gabapentin dose in kidney disease": the adjusted dose, never the usual titration.
        asked = ["organ", *(f for f in asked if f != "organ" and f not in _ORGAN_REPLACES)]
    if (
        medicines
        and not question.comparison
        and "alternatives" in asked
        and {"warnings", "side_effects"} & set(asked)
    ):
        # "Can LDN make my depression worse?" asks about the medicine's effect on mood, not
        # for another medicine.
        asked = [f for f in asked if f != "alternatives"]
    specific = [f for f in asked if f not in {OVERVIEW, TREATMENT}]
    if {TREATMENT, OVERVIEW} & set(asked) and not medicines and not specific:
        # "How is PN treated?", "what helps PN?": the treatment options, not an LDN overview.
        # They are what was asked, so a patient's plan shows its verdict on every option
        # ("what can I offer her?" for a pregnant patient: review round 4, q52).
        specific = ["non_drug", "alternatives"]
        asked = [*asked, *specific]
    # "Does LDN help?", "LDN for PN: what does the evidence say?": the overview.
    overview = (not asked and bool(question.subjects)) or (
        bool({OVERVIEW, TREATMENT} & set(asked))
        and set(specific) <= _OVERVIEW_COMPANIONS | ({"non_drug"} if "ldn" in medicines else set())
    )
    yes_no = question.yes_no
    # A comparison ("amitriptyline or duloxetine first?") opens with "it depends on ..." when
    # the evidence base has such an opening (select keeps to those that answer it).
    # A question about a point the base does not cover opens with that plain "not covered".
    # A choice that names a topic ("morning or night?") opens with the opening about that topic.
    chooses = question.choice and bool(question.topics)
    managing = MANAGE in question.topics and "side_effects" in asked
    # "How long must a patient be opioid-free after methadone?" names two medicines but asks
    # how long, not whether: no yes/no opening.
    asks_point = not yes_no and not _POINT_TOPICS.isdisjoint(question.topics)
    opens = (
        yes_no
        or (question.combination and not asks_point)
        or question.comparison
        or chooses
        or managing
    ) and not question.gaps
    plan: list[str] = [ANSWER] if opens else []
    in_base_condition = (
        question.condition is not None and not question.outside and "ldn" in medicines
    )
    if overview and in_base_condition and v.condition_plan:
        # "Does LDN work for fibromyalgia?": that condition's trials, then how LDN is used; not
        # the overview of LDN in pudendal neuralgia.
        overview = False
        asked = ["evidence", *(f for f in asked if f not in {OVERVIEW, TREATMENT, "evidence"})]
        plan += [*v.condition_plan, *(f for f in asked if f not in v.condition_plan)]
    elif managing:
        # "LDN gives me nightmares, what do I do?": what to do first, then the side effects and
        # the titration advice (hold a step longer); never the list of side effects alone.
        plan += ["side_effects", *(f for f in asked if f not in {"side_effects", OVERVIEW})]
        plan += ["dose"]
    elif overview:
        # An evidence or regulatory question that is also an overview leads with its own facet.
        plan += [f for f in asked if f in {"evidence", "regulatory"}]
        plan += [p for p in v.overview_plan if p != ANSWER]
    elif question.per_drug:
        # Each medicine of a class in turn: what was asked, and with its side effects the
        # warnings that go with them (boxed first).
        for f in specific:
            plan += [f, "warnings"] if f == "side_effects" else [f]
    elif question.gaps:
        # Beside an uncovered point, only what bears on it.
        plan += specific
    else:
        plan += specific
        adds_to_ldn = (
            question.combination
            and "ldn" in medicines
            and _OPIOID not in question.subjects
            and specific[:1] == ["interactions"]
        )
        for f in specific:
            if f == "interactions" and adds_to_ldn:
                # "Could LDN be added to my pregabalin?": whether, then how LDN is started; the
                # other medicine's own warnings (angioedema ...) do not bear on adding LDN.
                plan.append("dose")
                continue
            if f == "side_effects" and medicines - {"ldn"} and "ldn" not in medicines:
                # Another medicine's side effects come with its warnings (boxed first): what to
                # watch for is part of the answer.
                plan.append("warnings")
            plan.extend(v.follow.get(f, ()))
    if "organ" in asked:
        plan = [f for f in plan if f not in _ORGAN_REPLACES]
    if "elderly" in question.topics and "ldn" in medicines and "dose" in plan:
        # "LDN dose for an 80-year-old": how little the trials say at that age comes with the dose.
        plan.insert(plan.index("dose") + 1, "warnings")
    return replace(
        question,
        asked=tuple(f for f in asked if f != TREATMENT),
        plan=tuple(dict.fromkeys(plan)),
        overview=overview,
    )


@dataclass(frozen=True)
class Pick:
    """A statement chosen for an answer and the facet of the plan it fills."""

    facet: str
    statement: Statement


#: Topics too general to tell one part of a condition's care from another.
_GENERIC_TOPICS = frozenset(
    {"pudendal-neuralgia", "neuropathic-pain", "ldn", "evidence", "safety", "management"}
)
#: The organ topics a statement about kidney or liver function carries.
_ORGAN_TOPICS = frozenset({"kidney", "liver"})


def _other_organ(statement: Statement, question: Question) -> bool:
    """A statement about the kidney in a liver question (or the reverse)."""
    if not question.organ_parts:
        return False
    mine = _ORGAN_TOPICS & set(statement.topics)
    return bool(mine) and mine.isdisjoint(question.organ_parts)


#: Topics the question's words name that pick a statement whatever its subjects' specificity.
_POINT_TOPICS = frozenset(
    {
        "washout",
        "duplication",
        "pharmacokinetics",
        "formulation",
        "final-trial",
        "antidiarrhoeal",
        MANAGE,
    }
)
#: Topics naming one side effect: what to do about it is answered only by a statement on it.
_EFFECT_TOPICS = frozenset({"sleep", "nausea", "headache"})


def _names_topic(statement: Statement, question: Question) -> bool:
    return not (_POINT_TOPICS & set(question.topics)).isdisjoint(statement.topics)


def _other_condition(statement: Statement, question: Question) -> bool:
    """A trial in another condition, in a question about one the trials studied (the diabetic
    neuropathy trial in a fibromyalgia question)."""
    if question.condition is None or question.outside:
        return False
    if "pn" in statement.subjects and "evidence" in statement.facets:
        # ("no randomised trial of LDN in pudendal neuralgia" does not answer a fibromyalgia
        # question)
        return True
    mine = condition_topic(question.condition)
    return not (TRIAL_CONDITION_TOPICS - {mine}).isdisjoint(statement.topics)


def _is_combination_opener(statement: Statement) -> bool:
    """A yes/no opening about taking two named medicines together."""
    return len([s for s in statement.subjects if s not in CONDITION_SUBJECTS]) >= 2 and (
        "interactions" in statement.facets
    )


#: The topic of the opening about two serotonergic medicines taken together (an SNRI, a tricyclic,
#: tramadol): it answers only a question that names two of them, whatever else it names.
SEROTONERGIC_PAIR = "serotonergic-pair"


_EITHER = re.compile(r"\bor\b", re.IGNORECASE)
_TOGETHER = re.compile(r"\b(together|both)\b", re.IGNORECASE)


def _names_a_pair(statement: Statement, question: Question) -> bool:
    """The question names at least two of the medicines a pair opening is about, as taken
    together: "LDN with gabapentin, duloxetine or amitriptyline?" asks about each in turn."""
    if question.comparison:
        return False
    if _EITHER.search(question.text) and not _TOGETHER.search(question.text):
        return False
    return len((set(question.named) - {"ldn"}) & set(statement.subjects)) >= 2


def main_facet(question: Question) -> str:
    """The facet the question is mainly about: the overview, or the first facet it asks."""
    if question.overview:
        return OVERVIEW
    return next((f for f in question.plan if f != ANSWER), "")


#: Facets where a question about LDN is also served by statements about the condition it treats
#: (its alternatives and the care around it).
_CONTEXT_FACETS = frozenset({"alternatives", "non_drug"})


def _match(statement: Statement, question: Question, facet: str = "") -> int:
    """How specifically a statement is about the question's subjects (0: not at all)."""
    subjects = set(question.subjects)
    medicines = question.medicines
    mine = set(statement.subjects)
    # A medicine named in the question counts most; its class or members, then the conditions.
    named = set(question.named) & medicines
    score = 3 * len(mine & named) + 2 * len(mine & (medicines - named))
    score += len(mine & (subjects - medicines))
    if score == 0 and "pn" in subjects and "neuropathic_pain" in mine:
        score = 1
    if score == 0 and facet in _CONTEXT_FACETS and "ldn" in subjects and question.condition is None:
        # The care around LDN: for the condition the question names ("nerve pain" is not PN),
        # or for any condition when it names none.
        named_conditions = (subjects & CONDITION_SUBJECTS) or CONDITION_SUBJECTS
        score = 1 if not mine.isdisjoint(named_conditions) else 0
    return score


def for_drug(question: Question, drug: str, vocabulary: QuestionVocabulary) -> Question:
    """``question`` asked of one medicine of the class it named."""
    own = (drug, vocabulary.drug_class[drug]) if drug in vocabulary.drug_class else (drug,)
    return replace(question, subjects=own, named=(drug,), per_drug=())


def select(
    question: Question,
    statements: Sequence[Statement],
    relevance: Mapping[str, float],
    vocabulary: QuestionVocabulary,
) -> list[Pick]:
    """Fill the question's plan with statements, facet by facet, most specific first.

    ``statements`` come in the evidence base's order (curated: the key statement of a topic
    first); ``relevance`` is the lexical match to the question (0-1) used to order statements of
    equal specificity. A statement is used once, under the first facet of the plan it fills.
    """
    v = vocabulary
    # Another condition: no PN care (an LDN statement that mentions PN may stay).
    pool = [
        s
        for s in statements
        if not (question.condition and "pn" in s.subjects and "ldn" not in s.subjects)
        # A condition outside the base: nothing about PN at all (its answer is general).
        and not (question.outside and "pn" in s.subjects)
        and max(_match(s, question, f) for f in ("", *_CONTEXT_FACETS)) > 0
        and not _other_organ(s, question)
        and not _other_condition(s, question)
    ]
    order = {s.id: i for i, s in enumerate(statements)}
    # The topics of the statements closest to the question's words (up to four, all within a
    # tenth of the best match).
    best = sorted(
        (s for s in statements if ANSWER not in s.facets and relevance.get(s.id, 0.0) >= NEAR),
        key=lambda s: -relevance.get(s.id, 0.0),
    )[:4]
    closest = {t for s in best for t in s.topics} - _GENERIC_TOPICS
    picks: list[Pick] = []
    used: set[str] = set()
    asked = set(question.asked)

    def ranked(facet: str, question: Question = question) -> list[Statement]:
        candidates = [
            s
            for s in pool
            if facet in s.facets
            and s.id not in used
            and (facet == ANSWER) == (ANSWER in s.facets)
            and _match(s, question, facet) > 0
        ]
        if facet == ANSWER:
            # The yes/no answer must answer what was asked, not just name the same subjects.
            wanted = set(question.asked) - {OVERVIEW} | ({OVERVIEW} if question.overview else set())
            # ... and be about what the question is about: its first subject was asked.
            subjects = set(question.subjects)
            if "pn" in subjects:
                subjects.add("neuropathic_pain")
            candidates = [
                s
                for s in candidates
                if wanted & set(s.facets)
                and (s.subjects[0] in subjects or SEROTONERGIC_PAIR in s.topics)
            ]
            # Two serotonergic medicines named together are answered about each other first:
            # "yes" about LDN with each must not hide the risk of combining them.
            candidates = [
                s
                for s in candidates
                if SEROTONERGIC_PAIR not in s.topics or _names_a_pair(s, question)
            ]
            # An opening answers the main thing asked ("what about dreams?" is not answered by
            # the opening about opioids) ...
            main = main_facet(question)
            candidates = [s for s in candidates if main in s.facets]
            if (
                main in {"warnings", "side_effects", "dose", "organ"}
                and not question.general_safety
            ):
                # "Is it safe?" is answered "mostly, with one exception"; "is it addictive?" only
                # by an opening about the topic its words name (dependence).
                candidates = [
                    s for s in candidates if not set(s.topics).isdisjoint(question.topics)
                ]
            if MANAGE not in question.topics and main == "side_effects":
                # "Can LDN cause insomnia?" asks whether, not what to do about it.
                candidates = [s for s in candidates if MANAGE not in s.topics]
            elif MANAGE in question.topics and main == "side_effects":
                # "What do I do about the nightmares?" is opened only by what to do about the
                # side effect named (a sleep opening does not answer a nausea question).
                named_effects = set(question.topics) & _EFFECT_TOPICS
                candidates = [
                    s
                    for s in candidates
                    if MANAGE in s.topics
                    # (an opening about one side effect answers only a question naming it)
                    and named_effects == named_effects & set(s.topics)
                    and (named_effects or _EFFECT_TOPICS.isdisjoint(s.topics))
                ]
            for intent in set(question.topics) & INTENT_TOPICS:
                # "Can duloxetine and tramadol cause seizures?", "how do I stop ...?": only an
                # opening about the point asked answers it (review 4, q17 q48).
                candidates = [s for s in candidates if _INTENT_ANSWERED_BY[intent] & set(s.topics)]
            if question.comparison:
                # A comparison is answered only by an opening that weighs the options.
                candidates = [s for s in candidates if "comparison" in s.topics]
            # A question naming a medicine is opened only about that medicine: "can I use the
            # lidocaine plaster on the perineum?" is not answered by the opening about the oral
            # first-line medicines (review 4, q24 q25 q47).
            if question.named:
                candidates = [
                    s for s in candidates if not set(s.subjects).isdisjoint(question.named)
                ]
            # ... and one about a combination only a question that names both medicines.
            if len(question.named) < 2:
                candidates = [s for s in candidates if not _is_combination_opener(s)]
            # A pair opening not about LDN answers only a question whose medicines it names:
            # "codeine with gabapentin" is not "a gabapentinoid with duloxetine".
            candidates = [
                s
                for s in candidates
                if not _is_combination_opener(s)
                or "ldn" in s.subjects
                or SEROTONERGIC_PAIR in s.topics
                or set(question.named) - {"ldn"} <= set(s.subjects)
            ]
            # An opening about one part of a condition's care (nerve blocks, surgery) must be
            # about what the best-matching statements are about: "does physical therapy help?"
            # is not answered by the opening about nerve blocks.
            candidates = [
                s
                for s in candidates
                if s.subjects[0] not in CONDITION_SUBJECTS
                or OVERVIEW in s.facets
                or not (set(s.topics) - _GENERIC_TOPICS).isdisjoint(closest)
            ]
        # Statements on one narrow topic (LDN and thyroid hormone, LDN with immunosuppressants)
        # answer only a question naming it: they padded every LDN interaction answer (review
        # round 6, m08 m13 m21 m24).
        candidates = [
            s for s in candidates if not (_ASKED_ONLY_TOPICS & set(s.topics)) - set(question.topics)
        ]
        if facet == "warnings" and "organ" in question.asked and facet not in question.asked:
            # A kidney or liver question's warnings are about the organ and the medicine, not
            # its opioid rules (review round 4, q16 q17: opioid sentences in organ answers).
            candidates = [s for s in candidates if _OPIOID_TOPIC not in s.topics]
        if not candidates:
            return []
        if question.overview and question.medicines and facet != ANSWER:
            # The overview of a medicine: only its key points (tagged "overview").
            candidates = [s for s in candidates if OVERVIEW in s.facets]
            if not candidates:
                return []
        best = max(_match(s, question, facet) for s in candidates)
        if facet == ANSWER or question.medicines:
            # A medicine asked about by name: only the statements most specific to it.
            candidates = [
                s
                for s in candidates
                if _match(s, question, facet) == best
                # (an eligible pair opening stays: it answers about the two medicines named)
                or (facet == ANSWER and SEROTONERGIC_PAIR in s.topics)
                # (the statement about the point the question's words name stays: "how long to
                # wait after methadone" is answered by the washout, which names fewer opioids)
                or (facet != ANSWER and _names_topic(s, question))
            ]
        # Most specific first; then the key points (tagged "overview": boxed warnings, the
        # opioid contraindication ...); then the closest to the question's words.
        return sorted(
            candidates,
            key=lambda s: (
                # A comparison opens with the opening that weighs the options against each other.
                (question.comparison != ("comparison" in s.topics)) if facet == ANSWER else 0,
                -(SEROTONERGIC_PAIR in s.topics) if facet == ANSWER else 0,
                -_names_topic(s, question) if facet != ANSWER else 0,
                -_match(s, question, facet),
                # The opening about the topic the question names ("in the morning?" is not
                # answered by the opening about bedtime).
                -len(set(s.topics) & set(question.topics)) if facet == ANSWER else 0,
                len(set(s.subjects) - set(question.subjects)) if facet == ANSWER else 0,
                # The opening that covers more of what was asked ("morning, if I cannot sleep").
                -len(asked & set(s.facets)) if facet == ANSWER else 0,
                -len(set(s.topics) & set(question.topics) & _PRIORITY_TOPICS),
                # The statement about the topic the question's words name ("blood tests",
                # "breastfeeding", "seizures") before the medicine's generic boxed warning
                # (review 4: the question's intent decides what leads).
                -len(set(s.topics) & set(question.topics)) if facet != ANSWER else 0,
                -(BOXED in s.topics),
                -(OVERVIEW in s.facets),
                # An overview follows the curated order; a specific question its own words.
                0 if question.overview else -round(relevance.get(s.id, 0.0), 1),
                order[s.id],
            ),
        )

    for facet in question.plan:
        if question.per_drug and facet in PER_DRUG_FACETS:
            if question.comparison:
                # A trial that compared the medicines head to head comes first.
                pair = set(question.per_drug[:2])
                for s in ranked(facet):
                    if head_to_head(s, pair):
                        picks.append(Pick(facet, s))
                        used.add(s.id)
            # Each medicine in turn, its most specific statements for the facet.
            each = 2 if question.comparison else 1
            drugs = list(question.per_drug)
            if BOXED in question.topics:
                # "The boxed warnings of the alternatives": the medicines that carry one first.
                drugs.sort(
                    key=lambda d: (
                        not any(
                            BOXED in s.topics and d in s.subjects and facet in s.facets
                            for s in pool
                        )
                    )
                )
            for drug in drugs:
                for s in ranked(facet, for_drug(question, drug, v))[:each]:
                    picks.append(Pick(facet, s))
                    used.add(s.id)
            continue
        if facet == ANSWER:
            limit = 1
        elif question.overview:
            limit = v.limits.get("overview", 2)
        elif facet in asked:
            limit = v.limits.get("asked", 4)
        else:
            limit = v.limits.get("plan", 2)
        asked_of = question
        if facet == "dose" and question.combination and "ldn" in question.named:
            # "Could LDN be added to my pregabalin?": how LDN is started, not pregabalin's dose.
            asked_of = for_drug(question, "ldn", v)
        for s in ranked(facet, asked_of)[:limit]:
            picks.append(Pick(facet, s))
            used.add(s.id)
    if (
        picks
        and picks[0].facet == ANSWER
        and SEROTONERGIC_PAIR in picks[0].statement.topics
        and "ldn" in question.named
    ):
        # "Duloxetine and amitriptyline together with LDN?": the risk of the pair opens, and
        # what the label says of LDN with each of them follows (it is half of what was asked).
        with_ldn = [
            s
            for s in pool
            if ANSWER in s.facets
            and "ldn" in s.subjects
            and _is_combination_opener(s)
            and len((set(question.named) - {"ldn"}) & set(s.subjects)) >= 2
            and s.id not in used
        ]
        if with_ldn:
            picks.append(Pick("interactions", with_ldn[0]))
            used.add(with_ldn[0].id)
    if question.asked[:1] == ("organ",) and not any(p.facet == "organ" for p in picks):
        # Nothing on this medicine and the kidney or liver: say so ("not covered") rather than
        # answer with its other warnings.
        return []
    lead = 2 if picks and picks[0].facet == ANSWER else 1
    if picks and not any(p.facet in ACTION_FACETS for p in picks[lead:]):
        # Every answer has a Treatment Approach: the action statement closest to the question,
        # as specific to its medicines as the rest of the answer, if one is related at all.
        floor = max((_match(p.statement, question) for p in picks if p.facet != ANSWER), default=0)
        # "Can I take tramadol with LDN?" asks whether, not how to dose tramadol; a kidney or
        # liver question is not answered with the usual dose.
        actions = [
            f
            for f in v.action
            if not (f == "dose" and (question.combination or "organ" in question.asked))
        ]
        if question.medicines and {"warnings", "side_effects"} & asked:
            # "Can LDN make my depression worse?" asks about LDN, not for another medicine.
            actions = [f for f in actions if f != "alternatives"]
        options = [
            (min(_match(s, question, f), floor), relevance.get(s.id, 0.0), -i, f, s)
            for i, f in enumerate(actions)
            for s in ranked(f)[:1]
            if relevance.get(s.id, 0.0) >= RELATED
        ]
        if options:
            *_, facet, best_pick = max(options, key=lambda o: o[:3])
            picks.append(Pick(facet, best_pick))
    return picks


#: The words a yes/no answer opens with: yes, no, or "it depends on ..." and their hedged forms
#: (the cited openings of statements/answers.yaml use the same).
YES_NO_OPENINGS = (
    "Yes",
    "No",
    "Not ",
    "It depends",
    "Usually",
    "It may",
    "They may",
    "Mostly",
    "It is uncertain",
)
#: Facets about what a medicine does to the person taking it: a yes/no question about one of
#: them is decided by the medicine's warnings.
_SAFETY_FACETS = frozenset(
    {"warnings", "organ", "interactions", "pregnancy", "side_effects", "surgery", "monitoring"}
)
#: The topic of a contraindication and the topics of kidney and liver statements.
_CONTRAINDICATION = "contraindication"


def head_to_head(statement: Statement, pair: set[str]) -> bool:
    """Whether ``statement`` compares the two medicines of ``pair`` with each other: it names
    both and is about one of them (a class table that lists both, such as the numbers needed to
    treat of every first-line medicine, is not a head-to-head comparison; review 4, q22 q23)."""
    return pair <= set(statement.subjects) and statement.subjects[0] in pair


def opens_yes_no(text: str) -> bool:
    """Whether ``text`` opens with yes, no or "it depends" (or a hedged form of them)."""
    return text.startswith(YES_NO_OPENINGS)


def derived_opening(
    question: Question, picks: Sequence[Pick], names: Mapping[str, str]
) -> tuple[str, Statement] | None:
    """The first sentence of a yes/no answer no cited opening fits, and the statement it is
    derived from (it carries that statement's id and citations).

    Never guessed: the word it opens with follows from the evidence picked for the answer. A
    boxed warning asked about is "Yes" when the answer holds one for the medicine and otherwise
    "No boxed warning ... is recorded"; a side effect the question names that a side-effect
    statement is about is "Yes, it can"; a contraindication among the warnings is "Not without
    checking first"; a kidney or liver statement is "It depends on kidney/liver function"; other
    warnings are "It depends on the cautions"; anything else "It depends" on how the evidence
    applies; a point the evidence base does not cover is "Not known". ``names`` gives each
    medicine subject its display name.
    """
    if not question.yes_no or not picks or picks[0].facet == ANSWER:
        return None
    if manages(question):
        # "Should the patient drop back a dose?": no trial answers it yes or no; the titration
        # advice on side effects (the statement it derives from) follows at once.
        hit = next((p.statement for p in picks if MANAGE in p.statement.topics), None)
        if hit is not None:
            return (
                "It depends on the side effect and the prescriber: what the titration advice "
                "supports is set out below.",
                hit,
            )
    statements = [p.statement for p in picks]
    if question.gaps:
        # The point asked is one the evidence base holds nothing citable on: "not known".
        return (
            f"Not known: ldncare's sources hold no cited statement on {question.gaps[0]}; "
            "what bears on it follows.",
            statements[0],
        )
    medicines = [m for m in (question.per_drug or question.named) if m in names]
    name = names[medicines[0]] if len(medicines) == 1 else "it"
    main = main_facet(question)

    def about(s: Statement) -> bool:
        return not medicines or not set(medicines).isdisjoint(s.subjects)

    if BOXED in question.topics and medicines:
        boxed = [s for s in statements if BOXED in s.topics and about(s)]
        if len(medicines) > 1:
            having = [names[m] for m in medicines if any(m in s.subjects for s in boxed)]
            if having:
                return f"Yes, some do: {', '.join(having)} carry boxed warnings, set out below.", (
                    boxed[0]
                )
        elif boxed:
            return f"Yes: {name} carries a boxed warning, set out below.", boxed[0]
        else:
            return (
                f"No boxed warning for {name} is recorded in the ldncare evidence base; its key "
                "warnings follow.",
                statements[0],
            )
    if main == "side_effects":
        named = set(question.topics) - _GENERIC_TOPICS
        hit = next(
            (
                s
                for s in statements
                if "side_effects" in s.facets and about(s) and named & set(s.topics)
            ),
            None,
        )
        if hit is not None:
            owner = "its" if name == "it" else f"{name}'s"
            return f"Yes, it can: the evidence below reports it among {owner} side effects.", hit
    if main in _SAFETY_FACETS:
        contra = [
            s
            for s in statements
            if _CONTRAINDICATION in s.topics and about(s) and main != "monitoring"
        ]
        organ = [
            s
            for s in statements
            if "organ" in s.facets and (_ORGAN_TOPICS & set(s.topics) or question.organ_parts)
        ]
        if main in {"organ", "monitoring"} and organ:
            parts = set(question.organ_parts) or _ORGAN_TOPICS & set(organ[0].topics)
            part = " and ".join(sorted(parts))
            return (
                f"It depends on {part} function: what changes for {name} is set out below.",
                organ[0],
            )
        boxed = [s for s in statements if BOXED in s.topics and about(s)]
        if contra:
            # The boxed warning still leads (it carries the opening) when there is one.
            has = "a boxed warning, contraindications" if boxed else "contraindications"
            return (
                f"Not without checking first: {name} has {has} and cautions, set out below, "
                "that decide it.",
                (boxed or contra)[0],
            )
        if boxed:
            return (
                "It depends on the boxed warning and the cautions below, which decide it for "
                "each person.",
                boxed[0],
            )
        return "It depends on the cautions below, which decide it for each person.", statements[0]
    return (
        "It depends: the evidence below gives no plain yes or no, only what is known.",
        statements[0],
    )
