"""The report in the reference form, as a format-neutral view model.

Markdown and HTML render the same :class:`Report`, so both carry the same sentences and the
same citation numbers, and every number resolves to an entry of the reference list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ldncare.core.plan_contract import (
    Citation,
    GuidanceStatement,
    Ldn,
    Option,
    PlanContract,
    ScheduleStep,
    read_plan,
)
from ldncare.evidence.models import fit_text

SEVERITY_LABEL = {
    "contraindication": "Contraindication",
    "warning": "Caution",
    "info": "Note",
}


@dataclass(frozen=True)
class Sentence:
    text: str
    numbers: tuple[int, ...]
    #: Where it came from: a statement id, a rule id or a care item id.
    basis: str = ""
    detail: str = ""
    label: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    sentences: tuple[Sentence, ...]
    prose: bool = False


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    eligibility: str
    sections: tuple[Section, ...]
    schedule: tuple[ScheduleStep, ...]
    review_date: str | None
    schedule_numbers: tuple[int, ...]
    references: tuple[tuple[int, str], ...]
    #: Notes on the schedule (target outside the usual weeks, a trial already run...).
    schedule_notes: tuple[str, ...] = ()
    #: What to say when there is no schedule.
    no_schedule: str = "No LDN schedule: LDN is not recommended while a contraindication stands."
    #: "evidence base 2026.12.1, reviewed up to 2026-12-04"; empty for a plan stored before the
    #: contract carried the evidence version (issue 22).
    evidence: str = ""


NO_SCHEDULE_WITHHELD = (
    "No LDN schedule yet: naltrexone is on record without a readable dose. Confirm the dose "
    "first (see the findings)."
)


ELIGIBILITY_TEXT = {
    "eligible": "LDN can be tried: no contraindication or caution found.",
    "eligible_with_cautions": "LDN can be tried with the cautions below.",
    "not_recommended": "LDN is not recommended for this patient now (see contraindications).",
}


#: Rules that hold LDN only until an unknown medicine is named (review item 5).
_UNTIL_IDENTIFIED = frozenset(
    {"ldn.medication.unidentified", "ldn.medication.unidentified_stopped"}
)
ON_HOLD_UNTIL_IDENTIFIED = (
    "LDN is on hold until the unidentified medicine is identified (see contraindications)."
)


def _eligibility_text(ldn: Ldn) -> str:
    """The eligibility line; "on hold until identified" when an unknown medicine is the only
    reason LDN is not recommended."""
    stops = {f.rule for f in ldn.findings if f.severity == "contraindication"}
    if ldn.eligibility == "not_recommended" and stops and stops <= _UNTIL_IDENTIFIED:
        return ON_HOLD_UNTIL_IDENTIFIED
    return ELIGIBILITY_TEXT[ldn.eligibility]


def _reference(citation: Citation) -> str:
    """The reference, then its population, design, size and year (when the contract has them:
    plans stored before issue 22 item 4 have no population)."""
    if citation.population is None:
        return citation.reference
    fit = fit_text(citation.population, citation.evidence_type, citation.size, citation.year)
    return f"{citation.reference} [{fit}]"


def evidence_label(contract: PlanContract | Mapping[str, Any]) -> str:
    """Which evidence base a plan was made with, in words; "" when not recorded."""
    ev = read_plan(contract).evidence
    if ev is None:
        return ""
    return f"evidence base {ev.version}, reviewed up to {ev.reviewed_up_to.isoformat()}"


def build_report(contract: PlanContract | Mapping[str, Any]) -> Report:
    """Turn a plan contract (``ldncare.plan/1``) into the report view model."""
    plan = read_plan(contract)
    numbers = plan.citation_numbers()

    def nums(ids: Iterable[str]) -> tuple[int, ...]:
        return tuple(sorted({numbers[i] for i in ids}))

    def statements(part: list[GuidanceStatement]) -> tuple[Sentence, ...]:
        return tuple(Sentence(s.text, nums(s.citations), s.statement) for s in part)

    ldn = plan.ldn
    findings = tuple(
        Sentence(
            f.message,
            nums(f.citations),
            f.rule,
            detail=f.rationale,
            label=SEVERITY_LABEL[f.severity],
        )
        for f in ldn.findings
    )
    care = tuple(Sentence(c.text, nums(c.citations), c.id, label=c.title) for c in plan.care)
    sections = [
        Section("From the Guidelines", statements(plan.guidance.from_the_guidelines), prose=True),
        Section("Key Considerations", statements(plan.guidance.key_considerations)),
        Section("Treatment Approach", statements(plan.guidance.treatment_approach)),
        Section("Patient-specific findings", findings),
    ]
    if plan.options:
        sections.append(
            Section(
                "Alternatives and add-ons",
                tuple(
                    Sentence(
                        " ".join(r.message for r in o.reasons) or "No specific concern.",
                        nums(o.citation_ids()),
                        # With a rationale shown ("Why: ... rule ..."), the basis names the
                        # option's rules, not the drug.
                        ", ".join(dict.fromkeys(r.rule for r in o.reasons)) or o.drug,
                        detail=" ".join(
                            dict.fromkeys(r.rationale for r in o.reasons if r.rationale)
                        ),
                        label=_option_label(o),
                    )
                    for o in plan.options
                ),
            )
        )
    nantes = plan.nantes
    if nantes is not None:
        status = nantes.status.replace("_", " ")
        sections.append(
            Section(
                "Pudendal neuralgia diagnosis (Nantes criteria)",
                (
                    Sentence(
                        nantes.meaning,
                        nums(nantes.citations),
                        "nantes",
                        label=status.capitalize(),
                    ),
                ),
            )
        )
    sections.append(Section("Non-drug care and monitoring", care))
    patient = plan.patient
    who = patient.name or patient.id
    age = f", {patient.age} years" if patient.age is not None else ""
    evidence = evidence_label(plan)
    withheld = ldn.course is not None and ldn.course.kind == "withheld"
    return Report(
        title=f"Low-dose naltrexone plan: {who}",
        subtitle=f"Patient {patient.id}{age}; prepared {plan.as_of.isoformat()}"
        + (f"; {evidence}" if evidence else ""),
        evidence=evidence,
        eligibility=_eligibility_text(ldn),
        sections=tuple(sections),
        schedule=tuple(ldn.schedule),
        review_date=None if ldn.review_date is None else ldn.review_date.isoformat(),
        schedule_numbers=nums(ldn.citations) if ldn.schedule else (),
        references=tuple((c.number, _reference(c)) for c in plan.citations),
        schedule_notes=tuple(ldn.notes),
        **(
            {"no_schedule": NO_SCHEDULE_WITHHELD}
            if withheld and ldn.eligibility != "not_recommended"
            else {}
        ),
    )


#: How each advice for a medicine already taken reads in a report.
_ADVICE = {
    "reduce": "reduce the dose",
    "switch": "switch",
    "review": "review",
    "optimise": "optimise the dose",
    "continue": "continue",
}


def _option_label(o: Option) -> str:
    """``Duloxetine — preferred``; a medicine already taken reads ``Gabapentin — already
    taken, 900 mg/day: reduce the dose`` (never as a new start)."""
    name = o.name or o.drug
    current = o.current
    if o.suitability == "current" and current is not None:
        daily = current.daily_dose_mg
        dose = "" if daily is None else f", {daily:g} mg/day"
        advice = _ADVICE.get(current.advice or "", "review")
        label = f"{name} — already taken{dose}: {advice}"
    else:
        label = f"{name} — {o.suitability}"
    return label + ("" if o.combinable_with_ldn else " (not with LDN)")
