"""Naltrexone on the chart: is it low-dose, is its LDN trial due for review, and is LDN worth
suggesting. The decisions behind the CDS Hooks patient-view cards, kept here so that they are
pure, testable and the same for any adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ldncare.core.context import ClinicalContext
from ldncare.core.course import active_naltrexone, naltrexone_dose
from ldncare.core.findings import Finding, eligibility
from ldncare.core.patient import MedicationUse
from ldncare.evidence.models import Evidence


@dataclass(frozen=True)
class ReviewDue:
    """An LDN course on the chart that has run at least the shortest trial (``trial_weeks``)."""

    medication: MedicationUse
    start: date
    mg: Decimal
    weeks: int


def low_dose_mg(med: MedicationUse, evidence: Evidence) -> Decimal | None:
    """The stated dose in mg when it is at most the LDN maximum (ldn.yaml).

    ``None`` when the dose cannot be read (LDN cannot then be told from 50 mg naltrexone) or is
    above the maximum.
    """
    dose = naltrexone_dose(med)
    if dose is None or dose.mg_value > evidence.ldn.max_daily_dose.mg_value:
        return None
    return dose.mg_value


def reviews_due(ctx: ClinicalContext, evidence: Evidence) -> list[ReviewDue]:
    """Active low-dose naltrexone started at least ``trial_weeks.min`` weeks before the day.

    Orders without a readable dose or a start date are left out: ldncare cannot tell LDN from
    full-dose naltrexone, or how long it has run. The order's start is taken as the day its dose
    began, so this is the plan's review rule (``titration.review_date_for``: the trial counted
    at the dose) applied to a record without a plan.
    """
    due = []
    for med in active_naltrexone(ctx, evidence):
        mg = low_dose_mg(med, evidence)
        if mg is None or med.start is None:
            continue
        weeks = (ctx.as_of - med.start).days // 7
        if weeks >= evidence.ldn.trial_weeks.min:
            due.append(ReviewDue(med, med.start, mg, weeks))
    return due


def consider_ldn(ctx: ClinicalContext, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """Why LDN may be suggested to this patient, or ``()`` when it should not be.

    Suggested for active pudendal neuralgia, with no naltrexone on the chart, when the
    screening (``findings``, of this context) finds no contraindication: the plan's own verdict
    (``eligibility``). The basis is the cautions when there are any, else the off-label note
    (which the screening always gives).
    """
    if (
        not ctx.active_conditions("pudendal_neuralgia")
        or ctx.active_meds("naltrexone")
        # naltrexone recorded only by its RxNorm code: the screening found it
        or any(f.rule.startswith("ldn.naltrexone.") for f in findings)
        or eligibility(findings) == "not_recommended"
    ):
        return ()
    cautions = tuple(f for f in findings if f.severity == "warning")
    return cautions or tuple(f for f in findings if f.rule == "ldn.offlabel")
