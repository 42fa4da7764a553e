"""Assemble one patient's LDN plan and express it as the public JSON contract.

``build_plan`` is the single core entry point the CLI, the web app, FHIR export and CDS Hooks
share; ``TreatmentPlan.to_contract`` is the versioned ``ldncare.plan/1`` document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from ldncare.core.combinations import current_combinations
from ldncare.core.context import ClinicalContext
from ldncare.core.course import Course, plan_course
from ldncare.core.findings import SEVERITY_ORDER, Eligibility, Finding, eligibility
from ldncare.core.screening import screen
from ldncare.core.titration import Schedule, TitrationOptions, titrate
from ldncare.evidence.models import CareItem, Evidence, Statement

SCHEMA = "ldncare.plan/1"


class ContractPart(Protocol):
    """Anything (an option, a Nantes result, a response) that joins the plan contract."""

    def to_contract(self) -> dict[str, Any]: ...

    def citation_ids(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Guidance:
    """The three reference-form sections, as statements from the evidence base."""

    from_the_guidelines: tuple[Statement, ...]
    key_considerations: tuple[Statement, ...]
    treatment_approach: tuple[Statement, ...]

    def statements(self) -> tuple[Statement, ...]:
        return self.from_the_guidelines + self.key_considerations + self.treatment_approach


@dataclass(frozen=True)
class TreatmentPlan:
    ctx: ClinicalContext
    guidance: Guidance
    findings: tuple[Finding, ...]
    eligibility: Eligibility
    schedule: Schedule | None
    care: tuple[CareItem, ...]
    dosing_citations: tuple[str, ...]
    options: tuple[ContractPart, ...] = ()
    extras: dict[str, ContractPart] = field(default_factory=dict)
    #: How the schedule follows the record (new start, continue, withheld...); None for plans
    #: built before the course existed.
    course: Course | None = None

    @property
    def as_of(self) -> date:
        return self.ctx.as_of

    def citation_order(self) -> tuple[str, ...]:
        """Source ids in order of first appearance in the report; numbering follows it."""
        groups: list[Iterable[str]] = [s.citations for s in self.guidance.statements()]
        groups += [f.citations for f in self.findings]
        if self.schedule is not None:
            groups.append(self.dosing_citations)
        groups += [c.citations for c in self.care]
        groups += [o.citation_ids() for o in self.options]
        groups += [e.citation_ids() for e in self.extras.values()]
        order: dict[str, None] = {}
        for group in groups:
            for cid in group:
                order.setdefault(cid, None)
        return tuple(order)

    def to_contract(self, evidence: Evidence) -> dict[str, Any]:
        patient = self.ctx.patient
        numbers = {cid: i for i, cid in enumerate(self.citation_order(), start=1)}
        schedule = self.schedule
        contract: dict[str, Any] = {
            "schema": SCHEMA,
            "as_of": self.as_of.isoformat(),
            # Which knowledge the plan was made with (issue 22): stored with the plan, so a
            # later re-assessment can tell a plan made under an older evidence base.
            "evidence": evidence.release.to_contract(),
            "patient": {
                "id": patient.id,
                "name": patient.name,
                "age": self.ctx.age,
                "sex": patient.sex,
            },
            "ldn": {
                "eligibility": self.eligibility,
                "findings": [f.to_contract() for f in self.findings],
                "schedule": schedule.rows() if schedule else [],
                "review_date": schedule.review_date.isoformat() if schedule else None,
                "target_reached": schedule.target_reached.isoformat() if schedule else None,
                "max_daily_dose_mg": float(evidence.ldn.max_mg),
                "formulation": schedule.formulation.label if schedule else None,
                "notes": list(schedule.notes) if schedule else [],
                "citations": list(self.dosing_citations),
                "course": self.course.to_contract() if self.course else None,
            },
            "guidance": {
                section: [
                    {"statement": s.id, "text": s.text, "citations": list(s.citations)}
                    for s in getattr(self.guidance, section)
                ]
                for section in ("from_the_guidelines", "key_considerations", "treatment_approach")
            },
            "care": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "title": c.title,
                    "text": c.text,
                    "citations": list(c.citations),
                }
                for c in self.care
            ],
            "options": [o.to_contract() for o in self.options],
            "citations": [_citation(evidence, cid, numbers[cid]) for cid in self.citation_order()],
        }
        for key, part in self.extras.items():
            contract[key] = part.to_contract()
        return contract


def _citation(evidence: Evidence, cid: str, number: int) -> dict[str, Any]:
    src = evidence.sources[cid]
    return {
        "number": number,
        "id": src.id,
        "reference": src.reference_text(),
        "evidence_type": src.evidence_type,
        "grade": src.grade,
        "year": src.year,
        # How well the evidence fits (issue 22 item 4): PN evidence is mostly indirect.
        "population": src.population,
        "size": src.size,
        "pmid": src.pmid,
        "doi": src.doi,
        "url": src.url,
    }


def guidance(evidence: Evidence) -> Guidance:
    outline = evidence.report
    pick = evidence.statements.__getitem__
    return Guidance(
        from_the_guidelines=tuple(map(pick, outline.from_the_guidelines)),
        key_considerations=tuple(map(pick, outline.key_considerations)),
        treatment_approach=tuple(map(pick, outline.treatment_approach)),
    )


def build_plan(
    ctx: ClinicalContext,
    evidence: Evidence,
    titration: TitrationOptions,
    *,
    options: tuple[ContractPart, ...] = (),
    extras: dict[str, ContractPart] | None = None,
) -> TreatmentPlan:
    """Screen, then titrate when LDN is not contraindicated, then attach care and options."""
    findings = screen(ctx, evidence)
    verdict = eligibility(findings)
    # Titration options are validated even when LDN is not recommended, so a clinician's
    # typo ("4.5 g") is reported rather than hidden behind the contraindication.
    titrate(titration, evidence.ldn)
    course = plan_course(ctx, evidence, titration, findings, titrate)
    if course.deferred_for_washout:
        # The only contraindication is an opioid-free interval with a known end: a deferred
        # start (schedule.washout_deferred), as for surgery; the washout finding stays.
        verdict = "eligible_with_cautions"
    schedule = titrate(course.options, evidence.ldn) if course.schedules else None
    # Combinations already taken (core/combinations.py) are about those medicines, not LDN.
    combinations = current_combinations(ctx, evidence)
    if combinations and verdict == "eligible":
        verdict = "eligible_with_cautions"  # LDN itself is not barred; the plan has cautions
    added = course.findings + combinations
    if added:
        # The reasons the schedule differs from the default and the combinations already taken
        # join the findings (stable by severity); the verdict stays the screening's.
        findings = tuple(sorted(findings + added, key=lambda f: SEVERITY_ORDER[f.severity]))
    return TreatmentPlan(
        ctx=ctx,
        guidance=guidance(evidence),
        findings=findings,
        eligibility=verdict,
        schedule=None if verdict == "not_recommended" else schedule,
        care=evidence.care,
        dosing_citations=evidence.ldn.citations,
        options=options,
        extras=dict(extras or {}),
        course=course,
    )
