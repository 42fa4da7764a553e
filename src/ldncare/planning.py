"""The application-level entry point: load the shipped knowledge once, then plan.

Adapters (CLI, web, FHIR, CDS Hooks) call :func:`make_plan`; it wires the evidence base and the
vocabulary into the pure core and adds nothing of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from ldncare.core.context import ClinicalContext, build_context
from ldncare.core.nantes import assess_nantes
from ldncare.core.options import rank_options
from ldncare.core.patient import Patient
from ldncare.core.plan import ContractPart, TreatmentPlan, build_plan
from ldncare.core.plan_changes import PlanChanges, compare_plans
from ldncare.core.plan_contract import PlanContract, read_plan
from ldncare.core.titration import TitrationOptions
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.vocabulary import load_vocabulary


def context_for(patient: Patient, as_of: date) -> ClinicalContext:
    vocab = load_vocabulary()
    return build_context(patient, as_of, vocab.medications, vocab.conditions)


def make_plan(
    patient: Patient,
    *,
    start: date | None = None,
    as_of: date | None = None,
    titration: TitrationOptions | None = None,
    nantes: Mapping[str, bool | None] | None = None,
) -> TreatmentPlan:
    """Plan LDN for ``patient``: screening, schedule, care, ranked alternatives and, when the
    clinician answered the checklist, the Nantes criteria result.

    ``as_of`` defaults to today, ``start`` to ``as_of``.
    """
    as_of = as_of or date.today()
    if titration is None:
        titration = TitrationOptions(start=start or as_of)
    evidence = load_evidence()
    ctx = context_for(patient, as_of)
    extras: dict[str, ContractPart] = {}
    if nantes is not None:
        extras["nantes"] = assess_nantes(nantes, evidence.nantes)
    options = rank_options(ctx, evidence, start=titration.start)
    return build_plan(ctx, evidence, titration, options=options, extras=extras)


def remake_plan(patient: Patient, earlier: PlanContract | Mapping[str, Any]) -> dict[str, Any]:
    """The plan ``earlier`` (a stored ``ldncare.plan/1`` contract) made again from ``patient`` on
    the same day and with the same start, under the evidence base installed now."""
    plan = read_plan(earlier)
    course_start = plan.ldn.course.start if plan.ldn.course else None
    start = course_start or (plan.ldn.schedule[0].start_date if plan.ldn.schedule else None)
    return make_plan(patient, as_of=plan.as_of, start=start).to_contract(load_evidence())


def changes_since(patient: Patient, earlier: PlanContract | Mapping[str, Any]) -> PlanChanges:
    """What the installed evidence base changes for this patient against the stored plan
    ``earlier``: statements added, removed or reworded and decisions that moved (issue 22).
    ``ldncare patient changes`` and the patient's web page both show this one computation."""
    return compare_plans(earlier, remake_plan(patient, earlier))
