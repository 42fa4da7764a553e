"""Compose an answer to a clinical question from retrieved statements (pure, no I/O).

The retrieval adapter (``ldncare.ask``) finds and ranks statements; :func:`compose_answer` lays
them out in the reference form — *From the Guidelines*, *Key Considerations*, *Treatment
Approach* — with citation numbers renumbered in order of first appearance and a reference list.
Every sentence is a statement's own text with its id, so every sentence traces to the evidence
base. The one composed sentence (the first Key Consideration, naming the best source used) is
built only from that source's fields and carries the id of the statement that cites it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ldncare.core.answer_patient import PatientLine, ldn_lines, medicine_lines, medicines_first
from ldncare.core.plan_contract import Option, OptionReason, PlanLike, ldn_of, options_of
from ldncare.errors import EvidenceError
from ldncare.evidence.models import EVIDENCE_RANK, Source, Statement

SCHEMA = "ldncare.answer/1"
NOT_COVERED = "not covered by the ldncare evidence base"

SectionName = Literal[
    "from_the_guidelines",
    "key_considerations",
    "treatment_approach",
    "patient_context",
    "patient_medicines",
]
SECTION_TITLES: dict[str, str] = {
    "from_the_guidelines": "From the Guidelines",
    "key_considerations": "Key Considerations",
    "treatment_approach": "Treatment Approach",
    "patient_context": "Patient context",
    "patient_medicines": "This patient's medicines",
}
Basis = Literal["statement", "rule"]
#: Above the general sections of an answer about one patient (``ask --patient``).
GENERAL_NOTE = "General evidence for all patients; what applies to this patient is above."

#: Statements tagged with one of these topics say what to *do*; they go to Treatment Approach.
TREATMENT_TOPICS = frozenset(
    {
        "dosing",
        "titration",
        "trial-length",
        "formulation",
        "management",
        "lifestyle",
        "physical-therapy",
        "nerve-block",
        "referral",
        "monitoring",
        "washout",
        "first-line",
        "second-line",
        "pain-score",
        "kidney",
    }
)
#: How many of the best-ranked statements make the opening synthesis.
SYNTHESIS_SIZE = 2

_TYPE_LABEL = {
    "guideline": "clinical guideline",
    "systematic_review": "systematic review",
    "rct": "randomised controlled trial",
    "nonrandomised_trial": "non-randomised trial",
    "cohort": "cohort study",
    "case_series": "case series",
    "consensus": "consensus statement",
    "trial_registration": "trial registration",
    "regulator": "regulatory safety communication",
    "product_label": "product label",
    "expert_review": "expert review",
}
_POPULATION_LABEL = {
    "pudendal_neuralgia": "pudendal neuralgia",
    "neuropathic_pain": "neuropathic pain",
    "diabetic_neuropathy": "painful diabetic neuropathy",
    "fibromyalgia": "fibromyalgia",
    "chronic_pain": "chronic pain",
    "general": "patients in general",
}


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer and its basis (statement id, or rule id in patient context)."""

    text: str
    statement: str
    citations: tuple[int, ...]
    basis: Basis = "statement"
    severity: str | None = None

    def to_contract(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "statement": self.statement,
            "citations": list(self.citations),
            "basis": self.basis,
        }
        if self.severity is not None:
            out["severity"] = self.severity
        return out


@dataclass(frozen=True)
class Reference:
    number: int
    source: Source

    def to_contract(self) -> dict[str, Any]:
        s = self.source
        return {
            "number": self.number,
            "id": s.id,
            "reference": s.reference_text(),
            "evidence_type": s.evidence_type,
            "grade": s.grade,
            "year": s.year,
            "population": s.population,
            "size": s.size,
        }


#: How the LDN screening result reads at the head of a patient's answer.
ELIGIBILITY_LABELS = {
    "eligible": "eligible",
    "eligible_with_cautions": "eligible with cautions",
    "not_recommended": "not recommended",
}


@dataclass(frozen=True)
class Answer:
    question: str
    covered: bool
    sections: dict[str, tuple[Sentence, ...]] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()
    closest_topics: tuple[str, ...] = ()
    #: LDN eligibility from the plan contract, when the answer has a patient context.
    eligibility: str | None = None
    #: Set when the answer is a general one for a condition the evidence base does not cover.
    scope: str | None = None
    #: What the question was read as (subjects, facets, plan), for the JSON contract.
    understood: Mapping[str, Any] | None = None
    #: The evidence base the answer was given from: {"version", "reviewed_up_to"} (issue 22).
    evidence: Mapping[str, str] | None = None
    #: Points of the question the evidence base holds nothing citable on, said plainly
    #: ("a missed dose of LDN", "a head-to-head comparison of LDN and gabapentin").
    not_covered_points: tuple[str, ...] = ()

    @property
    def message(self) -> str | None:
        return None if self.covered else NOT_COVERED

    def sentences(self) -> tuple[Sentence, ...]:
        return tuple(s for part in self.sections.values() for s in part)

    def statement_ids(self) -> tuple[str, ...]:
        return tuple(s.statement for s in self.sentences() if s.basis == "statement")

    @property
    def start_deferred(self) -> bool:
        """Eligible, but not yet: a contraindication that ends (an opioid stopped days ago)
        puts the start off, so the headline must not read as "start today" (review round 5)."""
        return self.eligibility == "eligible_with_cautions" and any(
            s.severity == "contraindication" for s in self.sections.get("patient_context", ())
        )

    @property
    def eligibility_headline(self) -> str | None:
        """The screening result as the patient section states it."""
        if self.eligibility is None:
            return None
        label = ELIGIBILITY_LABELS.get(self.eligibility, self.eligibility)
        if self.start_deferred:
            return f"{label}, but not yet: the start waits until the contraindication below ends"
        return label

    def to_contract(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "question": self.question,
            "covered": self.covered,
            "sections": {
                name: [s.to_contract() for s in part] for name, part in self.sections.items()
            },
            "references": [r.to_contract() for r in self.references],
            "closest_topics": list(self.closest_topics),
        }
        if not self.covered:
            out["message"] = NOT_COVERED
        if self.eligibility is not None:
            out["eligibility"] = self.eligibility
            out["start_deferred"] = self.start_deferred
            out["eligibility_label"] = self.eligibility_headline
        if self.scope is not None:
            out["scope"] = self.scope
        if self.understood is not None:
            out["understood"] = dict(self.understood)
        if self.evidence is not None:
            out["evidence"] = dict(self.evidence)
        if self.not_covered_points:
            out["not_covered_points"] = list(self.not_covered_points)
        return out


def not_covered(question: str, closest_topics: Sequence[str]) -> Answer:
    """The honest answer to a question outside the evidence base."""
    return Answer(question=question, covered=False, closest_topics=tuple(closest_topics))


def with_patient(
    answer: Answer,
    plan_contract: PlanLike,
    sources: Mapping[str, Source],
    understood: Mapping[str, Any] | None = None,
) -> Answer:
    """A "not covered" answer still shows what the plan says about the patient: a question
    the evidence base cannot answer must not hide a contraindication or a dose to reduce
    (pharmacist review round 2)."""
    if answer.covered:
        return answer
    numbering = _Numbering(sources)
    eligibility, sections = _patient_sections(plan_contract, understood, numbering)
    return replace(
        answer, sections=sections, references=numbering.references(), eligibility=eligibility
    )


def _patient_sections(
    plan_contract: PlanLike, understood: Mapping[str, Any] | None, numbering: _Numbering
) -> tuple[str, dict[str, tuple[Sentence, ...]]]:
    """The patient's LDN screening and medicines, numbered before anything else: the LDN
    screening first when it holds a contraindication or the question is about LDN, else the
    medicines the question names first."""

    def sentences(lines: Sequence[PatientLine]) -> tuple[Sentence, ...]:
        return tuple(
            Sentence(
                line.text,
                line.rule,
                numbering.numbers(line.citations, f"rule {line.rule!r}"),
                basis="rule",
                severity=line.severity,
            )
            for line in lines
        )

    eligibility, ldn_findings = ldn_lines(plan_contract)
    medicines = medicine_lines(plan_contract, understood)
    blocked = any(f.severity == "contraindication" for f in ldn_findings)
    sections: dict[str, tuple[Sentence, ...]] = {}
    if medicines and medicines_first(understood) and not blocked:
        sections["patient_medicines"] = sentences(medicines)
    sections["patient_context"] = sentences(ldn_findings)
    if medicines and "patient_medicines" not in sections:
        sections["patient_medicines"] = sentences(medicines)
    return eligibility, sections


_GRADE_RANK = {"high": 0, "moderate": 1, "low": 2, "very_low": 3}


def source_quality(source: Source) -> tuple[int, int, int]:
    """Sort key: best certainty grade first, then stronger evidence type, then more recent."""
    return (_GRADE_RANK[source.grade], EVIDENCE_RANK[source.evidence_type], -source.year)


def uncovered_point(label: str) -> str:
    """The plain sentence for one point the evidence base does not cover."""
    return f"the ldncare evidence base has no cited statement on {label}"


def general_scope(condition: str) -> str:
    """The label of a general answer to a question about a condition outside the base."""
    return (
        f"{condition} is not covered by the ldncare evidence base: this is a general answer "
        "from evidence in other conditions, not care specific to it"
    )


def _short_name(source: Source) -> str:
    authors = source.authors.split("(")[0].strip().rstrip(".")
    first, _, rest = authors.partition(",")
    if rest.strip() and len(first.split()) <= 3:
        return f"{first.strip()} et al."
    return first.strip()


def _article(noun: str) -> str:
    """'a' or 'an' before ``noun`` ("an expert review", "a systematic review")."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def describe_source(source: Source, focus: str | None = "pudendal neuralgia") -> str:
    """The first Key Consideration: which source leads, what it is, and how direct it is.

    ``focus`` is the condition the question is about (pudendal neuralgia unless it names
    another); with ``None`` the caveat only says whom the source studied.
    """
    kind = _TYPE_LABEL[source.evidence_type]
    lead = (
        "The highest-quality source for the main point here (by certainty, then kind of evidence, "
        f"then date) is {_short_name(source)} "
        f"({source.year}), {_article(kind)} {kind} (certainty: {source.grade.replace('_', ' ')}) "
        f'— "{source.title.rstrip(".")}"'
    )
    if source.population == "pudendal_neuralgia" and focus == "pudendal neuralgia":
        return f"{lead}; it is direct evidence in pudendal neuralgia."
    population = _POPULATION_LABEL[source.population]
    if focus is None or population == focus:
        if source.population == "general":
            return f"{lead}; it concerns {population}."
        return f"{lead}; it studied {population}."
    if source.population == "general":
        return f"{lead}; it concerns {population}, not {focus} specifically."
    short = "PN" if focus == "pudendal neuralgia" else focus
    return (
        f"{lead}; it studied {population}, not {focus}, so applying it to {short} is extrapolation."
    )


class _Numbering:
    def __init__(self, sources: Mapping[str, Source]) -> None:
        self.sources = sources
        self.order: dict[str, int] = {}

    def numbers(self, ids: Sequence[str], where: str) -> tuple[int, ...]:
        out: list[int] = []
        for cid in ids:
            if cid not in self.sources:
                raise EvidenceError(f"{where} cites unknown source {cid!r}")
            number = self.order.setdefault(cid, len(self.order) + 1)
            if number not in out:
                out.append(number)
        return tuple(sorted(out))

    def references(self) -> tuple[Reference, ...]:
        return tuple(Reference(n, self.sources[cid]) for cid, n in self.order.items())


#: The first words of a patient's verdict, by screening result, and the finding it names.
_VERDICT = {
    "not_recommended": ("No, not as things stand", "contraindication"),
    "eligible_with_cautions": ("Possibly, with caution", "warning"),
}


def _patient_verdict(plan_contract: PlanLike | None, numbering: _Numbering) -> Sentence | None:
    """The yes/no first sentence for this patient: the screening's decisive finding (a
    contraindication, else a caution), with its rule id and citations."""
    if plan_contract is None:
        return None
    ldn = ldn_of(plan_contract)
    if ldn.eligibility not in _VERDICT:
        return None
    words, severity = _VERDICT[ldn.eligibility]
    finding = next((f for f in ldn.findings if f.severity == severity), None)
    barred = next((f for f in ldn.findings if f.severity == "contraindication"), None)
    if barred is not None and severity != "contraindication":
        # A start put off by a contraindication that ends (methadone stopped 10 days ago: the
        # schedule starts after the opioid-free interval) is "not yet", never "possibly":
        # review round 4, q50, where "Possibly" would have had LDN started today.
        words, finding = "Not yet", barred
    if finding is None:
        return None
    return Sentence(
        f"{words} for this patient: {finding.message}",
        finding.rule,
        numbering.numbers(tuple(finding.citations), f"rule {finding.rule!r}"),
        basis="rule",
        severity=finding.severity,
    )


#: Option reasons that say only where a medicine stands in general (first or second line).
_GENERAL_REASONS = frozenset({"option.first_line", "option.second_line"})
#: How a current medicine's advice, or a new option's suitability, answers "should she ...?".
_ADVICE_VERDICT = {"reduce": "No, not as things stand", "switch": "No, not as things stand"}
_SUITABILITY_VERDICT = {"avoid": "No", "caution": "Possibly, with caution"}
_SUITABILITY_WORDS = {
    "current": "already taken",
    "preferred": "preferred",
    "suitable": "suitable",
    "caution": "use with caution",
    "avoid": "avoid",
}


def _decisive(option: Option) -> OptionReason | None:
    """The reason that decides an option for this patient: a current medicine's own finding
    (above the kidney maximum ...), else its first patient-specific reason."""
    specific = [r for r in option.reasons if r.rule not in _GENERAL_REASONS]
    own = [
        r
        for r in specific
        if r.rule.startswith("option.current.") and not r.rule.startswith("option.current.taking")
    ]
    rest = [r for r in specific if not r.rule.startswith("option.current.")]
    return (own or rest)[0] if (own or rest) else None


def _medicine_verdict(
    options: Sequence[Option], numbering: _Numbering, *, yes_no: bool
) -> Sentence | None:
    """The first sentence about this patient's medicine: "No, not as things stand" when the plan
    advises reducing or switching a current one, or avoiding a new one; "Possibly, with caution"
    for a caution; for a question that is not yes/no, the decisive finding itself."""
    for option in options:
        reason = _decisive(option)
        if reason is None:
            continue
        advice = option.current.advice if option.current is not None else None
        words = _ADVICE_VERDICT.get(advice or "") or _SUITABILITY_VERDICT.get(option.suitability)
        if words is None:
            continue
        text = (
            # (the medicine named: review round 5, n25, read a tramadol verdict as one on the
            # fentanyl patch the question was about)
            f"{words} for this patient ({option.name}): {reason.message}"
            if yes_no
            else (
                f"For this patient, {option.name} ({_SUITABILITY_WORDS[option.suitability]}): "
                f"{reason.message}"
            )
        )
        return Sentence(
            text,
            reason.rule,
            numbering.numbers(tuple(reason.citations), f"rule {reason.rule!r}"),
            basis="rule",
            severity="warning",
        )
    return None


def _is_treatment(statement: Statement) -> bool:
    return any(t in TREATMENT_TOPICS for t in statement.topics)


def compose_answer(
    question: str,
    statements: Sequence[Statement],
    sources: Mapping[str, Source],
    *,
    plan_contract: PlanLike | None = None,
    placement: Sequence[SectionName] | None = None,
    scope: str | None = None,
    understood: Mapping[str, Any] | None = None,
    focus: str | None = "pudendal neuralgia",
    lead_from: Sequence[Statement] | None = None,
    opening: tuple[str, Statement] | None = None,
    verdict: bool = False,
    medicines: Sequence[str] = (),
    all_options: bool = False,
) -> Answer:
    """Lay ranked ``statements`` (best first, no duplicates) out in the reference form.

    ``placement`` gives each statement's section (the facet plan decides it); without it the
    first two make the synthesis and the rest go by topic. The source named as the best is the
    best graded among all those the answer's statements cite; ``lead_from`` (the statements that
    answer the main point asked) only breaks ties. ``opening`` is a yes/no first sentence derived
    from one of ``statements`` (:func:`ldncare.core.question.derived_opening`): it opens the
    synthesis with that statement's id and citations.
    """
    if placement is not None and len(placement) != len(statements):
        raise EvidenceError("compose_answer: one placement per statement")
    if placement is None:
        ranked = list(dict.fromkeys(statements))
        synthesis = ranked[:SYNTHESIS_SIZE]
        rest = ranked[SYNTHESIS_SIZE:]
        considerations = [s for s in rest if not _is_treatment(s)]
        treatment = [s for s in rest if _is_treatment(s)]
    else:
        placed = dict(zip(statements, placement, strict=True))
        ranked = list(placed)
        synthesis = [s for s in ranked if placed[s] == "from_the_guidelines"]
        considerations = [s for s in ranked if placed[s] == "key_considerations"]
        treatment = [s for s in ranked if placed[s] == "treatment_approach"]
    if not ranked:
        raise EvidenceError("compose_answer needs at least one statement; use not_covered()")

    for s in ranked:
        missing = [cid for cid in s.citations if cid not in sources]
        if missing or not s.citations:
            raise EvidenceError(f"statement {s.id!r} cites unknown or no source: {missing}")
    # The lead source: among the sources of the statements that answer the main point asked
    # (``lead_from``; all statements when none is given), the best graded, then the strongest
    # evidence type, then the most recent. Review round 4 found the best source of the whole
    # answer misleading: a meta-analysis of first-line drugs named for an LDN answer, a
    # fibromyalgia trial for the opioid washout.
    main = set(lead_from or ())
    cited = [
        (bool(main) and s not in main, source_quality(sources[cid]), i, cid, s)
        for i, s in enumerate(ranked)
        for cid in s.citations
    ]
    *_, lead_id, lead_statement = min(cited, key=lambda c: c[:3])
    lead_source = sources[lead_id]

    numbering = _Numbering(sources)

    def sentences(items: Sequence[Statement]) -> tuple[Sentence, ...]:
        return tuple(
            Sentence(s.text, s.id, numbering.numbers(s.citations, f"statement {s.id!r}"))
            for s in items
        )

    sections: dict[str, tuple[Sentence, ...]] = {}
    eligibility: str | None = None
    if plan_contract is not None:
        # The patient first (review round 2, a30 a40 a64 a69): what the plan says about this
        # patient opens the answer, and is numbered first; the general evidence follows.
        eligibility, sections = _patient_sections(plan_contract, understood, numbering)
    opener: tuple[Sentence, ...] = ()
    options = options_of(plan_contract) if plan_contract is not None else []
    asked_options = [o for o in options if o.drug in medicines]
    part = "patient_medicines"
    if asked_options:
        # A question about this patient's gabapentin is answered by what the plan says of it
        # (review r2 a40: 1,800 mg a day at creatinine clearance 23 mL/min is "No").
        patient_verdict = _medicine_verdict(asked_options, numbering, yes_no=verdict)
    elif all_options and options:
        patient_verdict = _medicine_verdict(
            [o for o in options if o.current is not None], numbering, yes_no=False
        )
    else:
        part = "patient_context"
        patient_verdict = _patient_verdict(plan_contract, numbering) if verdict else None
    if patient_verdict is not None:
        # A yes/no question about this patient is answered by this patient's screening (review
        # r2 a30: "Can I start LDN for this patient?" on tramadol must open "No"): the verdict
        # opens the patient's section it comes from, in place of the line it repeats.
        kept = tuple(s for s in sections.get(part, ()) if s.statement != patient_verdict.statement)
        if part in sections:
            sections[part] = (patient_verdict, *kept)
        else:
            sections = {part: (patient_verdict,), **sections}
    if plan_contract is not None:
        # With a patient, the plan's verdict above answers "can / should this patient ...";
        # a general "Yes, with caution" or "It depends" would contradict a "not recommended"
        # (pharmacist review round 2). The general evidence follows without it.
        opening = None
    if opening is not None:
        text, basis_statement = opening
        if basis_statement not in ranked:
            raise EvidenceError("compose_answer: the opening must derive from a statement used")
        opener = (
            Sentence(
                text,
                basis_statement.id,
                numbering.numbers(basis_statement.citations, f"statement {basis_statement.id!r}"),
            ),
        )
    sections["from_the_guidelines"] = opener + sentences(synthesis)
    lead = Sentence(
        describe_source(lead_source, focus),
        lead_statement.id,
        numbering.numbers((lead_source.id,), f"statement {lead_statement.id!r}"),
    )
    sections["key_considerations"] = (lead, *sentences(considerations))
    sections["treatment_approach"] = sentences(treatment)
    return Answer(
        question=question,
        covered=True,
        sections=sections,
        references=numbering.references(),
        eligibility=eligibility,
        scope=scope,
        understood=understood,
    )
