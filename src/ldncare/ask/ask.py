"""``answer_question``: understand the question, fill its facet plan, compose the answer.

1. :func:`ldncare.core.question.understand` finds the subjects and facets asked and the plan of
   facets a complete answer covers (an overview question gets every key point);
2. :func:`ldncare.core.question.select` fills each facet with the statements tagged with it and
   the question's subjects; BM25 relevance only orders statements of equal specificity, and
   decides scope when the question names no subject;
3. :func:`ldncare.core.answer.compose_answer` lays them out: the yes/no answer and the lead
   statement first, then Key Considerations and the Treatment Approach by facet.

The index is built once per process (about a tenth of a second) and cached; a warm question
takes about a millisecond. No language model is used: every sentence is a statement from the
evidence base.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ldncare.ask.index import AskIndex, Retrieval
from ldncare.ask.synonyms import load_synonyms
from ldncare.ask.understand import (
    cue_words,
    load_question_table,
    question_vocabulary,
    read_question,
)
from ldncare.core.answer import (
    Answer,
    SectionName,
    compose_answer,
    general_scope,
    not_covered,
    uncovered_point,
    with_patient,
)
from ldncare.core.plan_contract import ldn_of
from ldncare.core.question import (
    ACTION_FACETS,
    ANSWER,
    BOXED,
    Pick,
    Question,
    QuestionVocabulary,
    derived_opening,
    head_to_head,
    main_facet,
    select,
    with_subjects,
)
from ldncare.core.question import OPTIONS as OPTIONS_SUBJECT
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.models import Statement
from ldncare.evidence.vocabulary import load_vocabulary

#: Statements used in one answer (the synthesis takes the first two).
DEFAULT_TOP_K = 6
MAX_QUESTION_CHARS = 1000


@functools.cache
def ask_index() -> AskIndex:
    """The index over the shipped evidence base, built once per process."""
    return AskIndex.build(load_evidence(), load_synonyms(), cue_words(load_question_table()))


@functools.cache
def _vocabulary() -> QuestionVocabulary:
    return question_vocabulary(load_question_table(), ask_index().evidence.monographs)


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


def understand_question(question: str, *, patient: bool = False) -> Question:
    """What ``question`` asks: subjects, facets and the plan of a complete answer."""
    return read_question(_check(question), ask_index().normalizer, _vocabulary(), patient=patient)


def _placement(picks: list[Pick]) -> list[SectionName]:
    """The yes/no answer and the first statement lead; then by facet: what to do, or background."""
    out: list[SectionName] = []
    lead = 2 if picks and picks[0].facet == ANSWER else 1
    for i, pick in enumerate(picks):
        if i < lead:
            out.append("from_the_guidelines")
        elif pick.facet in ACTION_FACETS:
            out.append("treatment_approach")
        else:
            out.append("key_considerations")
    if "treatment_approach" not in out and len(out) > 1:
        # Nothing practical fits the question: its last point closes the answer rather than an
        # unrelated instruction.
        out[-1] = "treatment_approach"
    return out


#: Facets about a medicine's safety: asked beside an off-topic word (drinking, cannabis), the
#: safety part is answered and the off-topic part named as not covered.
_SAFETY_ASKED = frozenset({"organ", "pregnancy"})

#: Facets whose answer does not depend on the condition treated (a medicine's warnings, side
#: effects, interactions ...): asked with a condition outside the evidence base, they get a
#: labelled general answer. Whether or how to treat that condition is "not covered".
_CONDITION_FREE = frozenset(
    {
        "warnings",
        "side_effects",
        "interactions",
        "pregnancy",
        "organ",
        "surgery",
        "mechanism",
        "regulatory",
    }
)

#: The facets whose statements carry the overview's main point: whether LDN helps.
_OVERVIEW_MAIN = frozenset({"evidence"})


def _main_statements(picks: list[Pick], question: Question) -> list[Statement]:
    """The statements that answer the main point asked: the best source is chosen among theirs
    (the label for naltrexone's warnings, the meta-analyses for whether LDN helps)."""
    if question.overview:
        return [p.statement for p in picks if p.facet in _OVERVIEW_MAIN]
    # The opening answers the question: its sources, else those of the main facet's statements.
    opening = [p.statement for p in picks if p.facet == ANSWER]
    return opening or [p.statement for p in picks if p.facet == main_facet(question)]


def _display(subject: str) -> str:
    mono = ask_index().evidence.monographs.get(subject)
    if mono is not None:
        return mono.name.split(" (")[0].lower()
    return "LDN" if subject == "ldn" else subject.replace("_", " ")


def _uncovered(question: Question, statements: list[Statement]) -> tuple[str, ...]:
    """The points asked that the evidence base holds nothing citable on: each gap the question
    names, and a comparison of two medicines no statement compares head to head."""
    labels = list(question.gaps)
    if question.comparison and len(question.named) >= 2:
        pair = set(question.named[:2])
        if not any(head_to_head(s, pair) and "evidence" in s.facets for s in statements):
            first, second = (_display(s) for s in question.named[:2])
            labels.append(f"a head-to-head comparison of {first} and {second}")
    return tuple(uncovered_point(label) for label in labels)


def _comparison_opening(
    question: Question, picks: list[Pick], points: tuple[str, ...]
) -> tuple[str, Statement] | None:
    """A comparison no trial in the base makes head to head opens by saying so; what is known
    of each side follows (never the table of every medicine's numbers; review 4, q22 q23 q46)."""
    if not question.comparison or len(question.named) < 2 or not picks:
        return None
    if picks[0].facet == ANSWER or not any("head-to-head" in p for p in points):
        return None
    first, second = (_display(s) for s in question.named[:2])
    return (
        f"No head-to-head trial of {first} and {second} is in the ldncare evidence base: what "
        "is known of each is set out below.",
        picks[0].statement,
    )


#: "on warfarin", "with sertraline", "and warfarin": the unknown word (marked \x00) is taken
#: alongside ("after a heart attack", "in a teenager" are not).
_TAKEN_WITH = re.compile(r"\b(?:on|with|and|taking|plus)\s+\x00")


#: The facets a question asks about one medicine whose absence is said plainly.
_FACET_WORDS = {
    "interactions": "interactions",
    "side_effects": "side effects",
    "pregnancy": "use in pregnancy or breastfeeding",
}
_PER_MEDICINE_FACETS = frozenset(_FACET_WORDS)


def _original_word(text: str, stem: str) -> str:
    """The question's own word that ``stem`` came from ("warfarin"), else the stem."""
    for word in text.split():
        clean = word.strip("?,.!;:()'\"").lower()
        if clean.startswith(stem):
            return clean
    return stem


#: Facets about other options by nature ("what else can I try?").
_ELSEWHERE = frozenset({"alternatives", "non_drug"})


def _about_named(question: Question, picks: list[Pick]) -> list[Pick]:
    """A question naming medicines is answered about them: a statement whose main subject is
    none of the medicines it names (their classes, or the members it asks about in turn) is
    filler ("naltrexone must not ..." in a gabapentin and oxycodone question, tramadol's boxed
    warning for oxycodone, oral first-line medicines for a plaster question) and is left out.
    An overview of LDN keeps its alternatives (they are part of what it covers)."""
    if not question.named or (question.overview and "ldn" in question.named):
        return picks
    vocabulary = _vocabulary()
    wanted = set(question.named) | set(question.per_drug)
    wanted |= {vocabulary.drug_class[m] for m in question.named if m in vocabulary.drug_class}
    for m in list(wanted):
        wanted |= set(vocabulary.members.get(m, ())) if m in question.per_drug else set()
    # (what else to try, and the care beyond medicines, are about other things by nature)
    kept = [
        p
        for p in picks
        if (p.facet in _ELSEWHERE and not _ELSEWHERE.isdisjoint(question.asked))
        or _about(p.statement, wanted)
    ]
    # (an answer keeps at least an opening and one more point)
    if (
        not kept
        and question.unmatched
        and not set(question.named) & _vocabulary().drug_class.keys()
    ):
        # Nothing about the medicines named, none of which has a monograph ("citalopram with
        # methadone"): not covered, rather than another medicine of the class (tramadol).
        return []
    return kept if len(kept) >= min(2, len(picks)) else picks


def _about(statement: Statement, wanted: set[str]) -> bool:
    """Whether ``statement`` is about the medicines asked: it names one of them, and is not
    LDN's or another medicine's own warning that merely mentions their class."""
    subjects = statement.subjects
    if wanted.isdisjoint(subjects):
        return False
    main = subjects[0]
    drugs = set(subjects) & set(_vocabulary().drug_class)
    if main in drugs and drugs.isdisjoint(wanted):
        # (tramadol's own warnings do not answer a methadone question, though both are opioids)
        return False
    if "ldn" in subjects and "ldn" not in wanted:
        # ("Tramadol with LDN" in a duloxetine and tramadol question)
        return False
    return not (BOXED in statement.topics and main not in wanted)


def _is_medicine(word: str) -> bool:
    """Whether the medication vocabulary (drugs.yaml) knows ``word`` as a medicine."""
    return bool(load_vocabulary().medications.ingredient_classes(word))


#: Subjects of the opioids ldncare knows (tramadol, the class).
_OPIOIDS = frozenset({"opioid", "tramadol"})


def _no_opioid_advice(question: Question, picks: list[Pick]) -> list[Pick]:
    """An answer about LDN never advises or doses an opioid (naltrexone blocks them): "tramadol
    as acute rescue" or "tramadol 200 to 400 mg a day" in an LDN answer reads as a suggestion
    (review r2 a44 a51). Only a question asking for the alternatives, or naming the opioid's
    dose, gets them."""
    if "ldn" not in question.subjects or "alternatives" in question.asked:
        return picks
    asked_dose = "dose" in question.asked and not _OPIOIDS.isdisjoint(question.named)
    kept = [
        p
        for p in picks
        if asked_dose
        or "ldn" in p.statement.subjects
        or _OPIOIDS.isdisjoint(p.statement.subjects)
        or {"dose", "alternatives"}.isdisjoint(p.statement.facets)
    ]
    return kept or picks


#: The facets of how LDN is started and taken: general advice a barred patient cannot follow.
_START_FACETS = frozenset({"dose", "timing", "trial"})


def _barred(plan_contract: Mapping[str, Any] | None) -> bool:
    """Whether this patient's LDN screening holds a contraindication (an opioid taken or stopped
    days ago, under 18 ...): the patient may not start LDN now."""
    if plan_contract is None:
        return False
    return any(f.severity == "contraindication" for f in ldn_of(plan_contract).findings)


def _no_start_plan(picks: list[Pick]) -> list[Pick]:
    """The picks without how LDN is started and taken: for a barred patient the general answer
    does not lead with the start plan, which read next to the verdict invites starting (review
    rounds 5 and 6: q49 q50 n39 m23 m25)."""
    return [
        p
        for p in picks
        if not (
            "ldn" in p.statement.subjects
            and _START_FACETS & set(p.statement.facets)
            and p.facet in _START_FACETS
        )
    ]


#: The monograph's usual adult dosing line ("... maximum 400 mg a day").
_ADULT_DOSING = ".dosing"


def _for_population(
    question: Question, picks: list[Pick], statements: list[Statement]
) -> list[Pick]:
    """An older adult, or kidney or liver disease, never gets the adult maximum alone: a
    medicine's usual dosing line is replaced by its lower limits for those groups (the label's
    dose limits, its kidney table) when it has them, else shown beside its older-adult caution
    (review 4, q49: tramadol over 75 is at most 300 mg a day, not 400 mg)."""
    if {"taper", "stopping"} & set(question.topics):
        # "How do I stop duloxetine?" is never answered with its up-titration schedule.
        picks = [p for p in picks if not p.statement.id.endswith(_ADULT_DOSING)] or picks
    elderly = "elderly" in question.topics
    organ = bool(question.organ_parts) or "organ" in question.asked
    if not (elderly or organ):
        return picks
    by_id = {s.id: s for s in statements}
    used = {p.statement.id for p in picks}
    out: list[Pick] = []
    for pick in picks:
        s = pick.statement
        if not (s.id.startswith("drug.") and s.id.endswith(_ADULT_DOSING)):
            out.append(pick)
            continue
        drug = s.id.split(".")[1]
        limits = [f"drug.{drug}.dose_limits"]
        if organ:
            limits.append(f"drug.{drug}.renal")
        instead = [by_id[i] for i in limits if i in by_id]
        if elderly:
            instead += [
                x for x in statements if "elderly" in x.topics and x.subjects[:1] == (drug,)
            ]
        instead = [x for x in dict.fromkeys(instead) if x.id not in used]
        if not instead and (organ or any(i in by_id for i in limits)):
            continue
        if not any(i in by_id for i in limits) and not organ:
            # No lower limit recorded: the usual dosing, with the older-adult caution beside it.
            out.append(pick)
        for x in instead:
            out.append(Pick(pick.facet, x))
            used.add(x.id)
    return out


#: At most this many statements answer one specific point ("the half-life").
_POINT_SIZE = 3


def _about_subjects(statement: Statement, question: Question) -> bool:
    wanted = set(question.named or question.medicines or question.subjects)
    return not wanted.isdisjoint(statement.subjects)


def _compose_point(
    text: str,
    question: Question,
    lead: list[Statement],
    found: Retrieval,
    plan_contract: Mapping[str, Any] | None,
    openings: Sequence[Statement] = (),
) -> Answer:
    """The statements holding the point asked, first and alone (a cited yes/no opening on it
    before them); the one practical statement that follows from them (same subject, a facet
    they carry) closes the answer."""
    index = ask_index()
    relevance = {h.statement.id: h.relevance for h in (*found.hits, *found.others)}
    lead = [*openings, *sorted(lead, key=lambda s: -relevance.get(s.id, 0.0))[:_POINT_SIZE]]
    chosen = {s.id for s in lead}
    follows = [
        d.statement
        for d in index.documents
        if d.statement.id not in chosen
        and "answer" not in d.statement.facets
        and _about_subjects(d.statement, question)
        and not ACTION_FACETS.isdisjoint(d.statement.facets)
        and not set(lead[0].facets).isdisjoint(d.statement.facets)
    ]
    # The closest in topic to the point (its surgery advice for the half-life), in the evidence
    # base's curated order; a statement about the evidence gap is not the practical step.
    topics = set(lead[0].topics) - {"evidence"}
    order = {d.statement.id: i for i, d in enumerate(index.documents)}
    follows = [s for s in follows if "evidence" not in s.topics]
    follows.sort(key=lambda s: (-len(topics & set(s.topics)), order[s.id]))
    statements = [*lead, *follows[:1]]
    placement: list[SectionName] = ["from_the_guidelines"]
    placement += ["key_considerations"] * (len(lead) - 1)
    placement += ["treatment_approach"] * (len(statements) - len(lead))
    if len(statements) > 1 and "treatment_approach" not in placement:
        placement[-1] = "treatment_approach"
    return compose_answer(
        text,
        statements,
        index.evidence.sources,
        plan_contract=plan_contract,
        placement=placement,
        understood=question.to_contract(),
        focus=question.condition_label,
        lead_from=lead,
    )


def _uncovered_answer(text: str, label: str, found: Retrieval) -> Answer:
    """ "Not covered", naming the point asked, with the closest covered topics."""
    return replace(
        not_covered(text, found.closest_topics), not_covered_points=(uncovered_point(label),)
    )


def _point_answer(
    text: str,
    question: Question,
    found: Retrieval,
    plan_contract: Mapping[str, Any] | None,
) -> Answer | None:
    """A question naming a specific point (``points`` in questions.yaml: the half-life ...) is
    answered with the statements on that point about its subject, or plainly not covered."""
    vocabulary = _vocabulary()
    named = [t for t in question.topics if t in vocabulary.points]
    if not named or not question.subjects:
        return None
    topic = named[0]
    lead = [
        d.statement
        for d in ask_index().documents
        if topic in d.statement.topics
        and "answer" not in d.statement.facets
        and _about_subjects(d.statement, question)
    ]
    if not lead:
        subject = ", ".join(_display(s) for s in (question.named or question.subjects)[:1])
        return _uncovered_answer(text, f"{vocabulary.points[topic]} for {subject}", found)
    openings = [
        d.statement
        for d in ask_index().documents
        if question.yes_no
        and "answer" in d.statement.facets
        and topic in d.statement.topics
        and _about_subjects(d.statement, question)
    ]
    return _compose_point(text, question, lead, found, plan_contract, openings[:1])


def _specific_answer(
    text: str,
    question: Question,
    specific: list[str],
    found: Retrieval,
    plan_contract: Mapping[str, Any] | None,
) -> Answer | None:
    """The statements about the subject that hold every specific word asked, alone; None when
    none does (a word such as "often" may be said otherwise: the key points answer then)."""
    lead = [s for s in ask_index().containing(specific) if _about_subjects(s, question)]
    if not lead:
        return None
    return _compose_point(text, question, lead, found, plan_contract)


def answer_question(
    question: str,
    *,
    plan_contract: Mapping[str, Any] | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> Answer:
    """Answer ``question`` in the reference form; with ``plan_contract`` add the patient context.

    ``top_k`` is how many retrieved statements answer a question whose facets could not be read
    (the plan decides the length of every other answer). Every answer, covered or not, names the
    evidence base it was given from (issue 22).
    """
    found = _answer_question(question, plan_contract=plan_contract, top_k=top_k)
    if plan_contract is not None and not found.covered:
        understood = understand_question(question, patient=True).to_contract()
        found = with_patient(found, plan_contract, load_evidence().sources, understood)
    return replace(found, evidence=load_evidence().release.to_contract())


def _answer_question(
    question: str,
    *,
    plan_contract: Mapping[str, Any] | None,
    top_k: int,
) -> Answer:
    if top_k < 1:
        raise InvalidInput(f"top_k must be at least 1, not {top_k}", field="top_k")
    text = _check(question)
    index = ask_index()
    vocabulary = _vocabulary()
    asked = read_question(text, index.normalizer, vocabulary, patient=plan_contract is not None)
    found = index.search(text)
    off_topic_points: tuple[str, ...] = ()
    # An opioid named with LDN is always answered (review round 5, n03: "I drink kratom tea
    # ... can I add LDN?" was refused over the word "drink").
    opioid_with_ldn = {"ldn", "opioid"} <= set(asked.subjects)
    if (
        asked.off_topic
        and asked.medicines
        and (set(asked.asked) & _SAFETY_ASKED or opioid_with_ldn)
    ):
        # "Is naltrexone safe for my liver? I drink a lot": the liver is covered, the drinking
        # is not; answer the first and say so of the second (review r2 a59).
        words = ", ".join(_original_word(text, w) for w in asked.off_topic_words)
        drug = _display(asked.named[0] if asked.named else "ldn")
        off_topic_points = (uncovered_point(f"{words} (while taking {drug})"),)
        asked = replace(asked, off_topic=False)
    if (
        asked.outside
        and asked.condition_label
        and (not asked.medicines or asked.overview or not set(asked.asked) <= _CONDITION_FREE)
    ):
        # "Does LDN work for trigeminal neuralgia?", "LDN dose for migraine": whether and how to
        # treat a condition the evidence base does not hold is not covered, and the answer says
        # which point; only what a medicine does whatever it treats (its warnings, interactions
        # ...) gets a general answer.
        drugs = " or ".join(_display(m) for m in asked.named) or "any treatment"
        return _uncovered_answer(text, f"{drugs} in {asked.condition_label}", found)
    if asked.off_topic and asked.off_topic_words:
        # A topic the evidence base does not hold (cost, cannabis, drinking ...), named.
        words = ", ".join(_original_word(text, w) for w in asked.off_topic_words)
        taken = f" (with {_display(asked.named[0])})" if asked.named else ""
        return _uncovered_answer(text, f"{words}{taken}", found)
    if (asked.outside and not asked.medicines) or asked.off_topic:
        # Another condition, or a topic the evidence base does not hold (cost, cannabis ...).
        return not_covered(text, found.closest_topics)
    point = _point_answer(text, asked, found, plan_contract)
    if point is not None:
        return point
    if not asked.subjects:
        if not found.covered or not found.hits:
            return not_covered(text, found.closest_topics)
        best = found.hits[0].statement
        asked = with_subjects(asked, best.subjects, best.facets, vocabulary)
    elif not asked.asked and asked.unmatched:
        # The question asks something no facet names. A word the evidence base never uses
        # ("Can I drive on LDN?", "... naloxone?") means it is not covered; with a specific word
        # it does use ("Is LDN addictive?") the overview is given, but no yes/no opening claims
        # to answer what was not understood.
        if index.unknown_terms(asked.unmatched):
            return not_covered(text, found.closest_topics)
        specific = index.specific_terms(asked.unmatched)
        if specific:
            # "What is the elimination rate of naltrexone?": a specific fact asked of a subject;
            # the statements holding its words answer it alone (a point the base names, such as
            # the half-life, is answered or refused by name: _point_answer).
            specific_answer = _specific_answer(text, asked, specific, found, plan_contract)
            if specific_answer is not None:
                return specific_answer
        if asked.yes_no and specific:
            asked = with_subjects(replace(asked, yes_no=False), asked.subjects, (), vocabulary)
    relevance = {h.statement.id: h.relevance for h in (*found.hits, *found.others)}
    statements = [d.statement for d in index.documents]
    picks = select(asked, statements, relevance, vocabulary)
    picks = _for_population(asked, _about_named(asked, picks), statements)
    picks = _no_opioid_advice(asked, picks)
    if _barred(plan_contract) and "ldn" in asked.subjects:
        kept = _no_start_plan(picks)
        if not kept:
            # "Can I start LDN for this patient?" for a patient who may not start it yet: what
            # stands in the way (the warnings: the opioid rules and the wait), not how to start.
            asked = replace(asked, asked=("warnings",), plan=("warnings",))
            picks = select(asked, statements, relevance, vocabulary)
            kept = _no_start_plan(_no_opioid_advice(asked, picks))
        picks = kept or picks
    points = _uncovered(asked, statements)
    names = {s: _display(s) for s in asked.subjects if s == "ldn" or s in index.evidence.monographs}
    topical = [m for m in asked.named if vocabulary.drug_class.get(m) == "topical"]
    if topical and "pn" in asked.subjects:
        # A patch or plaster asked about for the pudendal (perineal, genital) area: the labels
        # in the base cover neither that site nor PN (review 4, q24 q25).
        drug = " and ".join(_display(m) for m in topical)
        points = (
            *points,
            uncovered_point(
                f"the {drug} on the perineum or genital area, or in pudendal neuralgia"
            ),
        )
    if "organ" in asked.asked and asked.per_drug:
        # "Which alternatives are safe in kidney disease?": one line per medicine, and each
        # medicine with no kidney or liver statement is named as not covered (review 4, q36).
        part = " or ".join(asked.organ_parts) or "kidney or liver"
        points = (
            *points,
            *(
                uncovered_point(f"{_display(d)} in {part} disease")
                for d in asked.per_drug
                if not any(d in p.statement.subjects and p.facet == "organ" for p in picks)
            ),
        )
    unknown = [
        t
        for t in index.unknown_terms(asked.unmatched)
        if _TAKEN_WITH.search(f" {text.lower()}".replace(f" {_original_word(text, t)}", " \x00"))
        # ("Is citalopram a problem with his methadone?": a word the medication vocabulary knows
        # as a medicine, wherever it stands)
        or _is_medicine(_original_word(text, t))
    ]
    # A medicine whose class the answer speaks of ("sertraline" and "SSRIs") is answered.
    unknown = [
        t
        for t in unknown
        if not any(
            cls.replace("_", " ") in p.statement.text.lower()
            for p in picks
            for cls in load_vocabulary().medications.ingredient_classes(_original_word(text, t))
        )
    ]
    if unknown and set(asked.asked) & {"warnings", "interactions"}:
        # "Is LDN safe ... on warfarin?": a word no statement uses is most often another
        # medicine; whether it combines safely is not studied in the base (review 4, q45).
        others = ", ".join(_original_word(text, t) for t in unknown)
        taken = " or ".join(_display(m) for m in asked.named) or "these medicines"
        points = (*points, uncovered_point(f"taking {others} with {taken}"))
    for drug in asked.named if main_facet(asked) in _PER_MEDICINE_FACETS else ():
        # "Does the lidocaine plaster interact with anything?": nothing on its interactions is
        # said plainly, not answered with what its cautions are (review 4, q42).
        facet = main_facet(asked)
        if drug in names and not any(
            (p.facet == facet or facet in p.statement.facets) and drug in p.statement.subjects
            for p in picks
        ):
            # (the cited opening "Yes, with caution: the label names no interaction ..." is a
            # statement on its interactions: no banner may contradict it; review r2 a06 a11)
            points = (*points, uncovered_point(f"the {_FACET_WORDS[facet]} of {names[drug]}"))
    stopping = {"taper", "stopping"} & set(asked.topics)
    for drug in asked.named if stopping else ():
        if not any(
            drug in p.statement.subjects and {"taper", "stopping"} & set(p.statement.topics)
            for p in picks
        ):
            points = (*points, uncovered_point(f"how to stop or taper {_display(drug)}"))
    scope = (
        general_scope(asked.condition_label) if asked.outside and asked.condition_label else None
    )
    # The condition the answer is about: PN unless the question names another or none at all.
    focus = asked.condition_label or ("pudendal neuralgia" if "pn" in asked.subjects else None)
    if not picks:
        # Nothing in the base answers what was asked about these subjects (duloxetine in
        # pregnancy): say so, rather than answer a neighbouring question.
        if asked.asked or asked.gaps or not found.covered or not found.hits or asked.outside:
            return replace(not_covered(text, found.closest_topics), not_covered_points=points)
        return compose_answer(
            text,
            [h.statement for h in found.hits[:top_k]],
            index.evidence.sources,
            plan_contract=plan_contract,
            understood=asked.to_contract(),
        )
    # A yes/no question no cited opening answers: the first sentence says yes, no or "it
    # depends on ..." as the evidence picked decides (a contraindication, a kidney statement ...).
    composed = compose_answer(
        text,
        [p.statement for p in picks],
        index.evidence.sources,
        plan_contract=plan_contract,
        placement=_placement(picks),
        scope=scope,
        understood=asked.to_contract(),
        focus=focus,
        lead_from=_main_statements(picks, asked),
        opening=_comparison_opening(asked, picks, points) or derived_opening(asked, picks, names),
        verdict=asked.yes_no and ("ldn" in asked.subjects or bool(asked.named)),
        medicines=[m for m in (*asked.named, *asked.per_drug) if m != "ldn"],
        all_options="alternatives" in asked.asked or OPTIONS_SUBJECT in asked.subjects,
    )
    return replace(composed, not_covered_points=(*off_topic_points, *points))
