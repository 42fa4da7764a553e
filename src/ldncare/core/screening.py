"""Safety screening of one patient for LDN.

Each check asks the classified patient one question and, when the answer matters, emits a
finding built from ``rules.yaml`` (wording, severity and citations live there, reviewed as data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

from ldncare.core.context import ClinicalContext
from ldncare.core.course import naltrexone_findings, naltrexone_on_record
from ldncare.core.findings import SEVERITY_ORDER, Finding, finding
from ldncare.core.patient import LabKind, MedicationUse
from ldncare.errors import EvidenceError
from ldncare.evidence.models import Evidence

#: Age from which the naltrexone label's geriatric-use section applies.
OLDER_ADULT_AGE = 65
#: eGFR (mL/min/1.73 m²) below which kidney function is reduced (CKD G3a and worse, KDIGO).
EGFR_REDUCED = 60.0

Check = Callable[[ClinicalContext, Evidence], Iterator[Finding]]


def _names(meds: tuple[MedicationUse, ...]) -> str:
    seen: dict[str, None] = {}
    for m in meds:
        seen.setdefault(m.name, None)
    return "; ".join(seen)


def _opioid_is_long_acting(ctx: ClinicalContext, med: MedicationUse) -> bool:
    for m in ctx.medications:
        if m.med is med:
            return bool(m.classes & {"opioid_long_acting", "methadone", "buprenorphine"})
    return False


def check_indication(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    yield finding(ev, "ldn.offlabel")
    pn = ctx.active_conditions("pudendal_neuralgia")
    if pn:
        yield finding(ev, "ldn.indication.pn", condition=pn[0].display)
        return
    for cls in ("neuropathic_pain", "chronic_pelvic_pain", "fibromyalgia", "chronic_pain"):
        other = ctx.active_conditions(cls)
        if other:
            yield finding(ev, "ldn.indication.neuropathic", condition=other[0].display)
            return
    yield finding(ev, "ldn.indication.not_recorded")


def check_opioids(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    # The vocabulary puts every opioid agonist or partial agonist (tramadol, codeine cough
    # products, buprenorphine incl. with naloxone, methadone) in class "opioid"; pure
    # antagonists (naloxone, naltrexone) are not in it.
    active = ctx.active_meds("opioid")
    for med in active:
        yield finding(ev, "ldn.opioid.active", medication=med.name)
    past = ctx.past_meds("opioid")
    if not past:
        return
    free = ev.ldn.opioid_free_days
    if free is None:
        raise EvidenceError("ldn.yaml: opioid_free_days is required for the washout check")
    recent: list[tuple[MedicationUse, int]] = []
    for med in past:
        if med.end is None:
            continue
        days = free.long_acting if _opioid_is_long_acting(ctx, med) else free.short_acting
        if med.end + timedelta(days=days) > ctx.as_of:
            recent.append((med, days))
    for med, days in recent:
        assert med.end is not None
        yield finding(
            ev,
            "ldn.opioid.washout",
            medication=med.name,
            end_date=med.end.isoformat(),
            earliest_start=(med.end + timedelta(days=days)).isoformat(),
        )
    history = tuple(m for m in past if all(m is not r for r, _ in recent))
    if history:
        yield finding(ev, "ldn.opioid.history", medication=_names(history))


def check_surgery(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    when = ctx.patient.planned_surgery
    if when is not None and when >= ctx.as_of:
        yield finding(ev, "ldn.surgery.planned", date=when.isoformat())


def check_addiction(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    if ctx.ever_conditions("opioid_use_disorder"):
        yield finding(ev, "ldn.oud.diagnosis")
    yield from naltrexone_findings(naltrexone_on_record(ctx, ev), ev)
    for allergy in ctx.patient.allergies:
        codes = {c.code for c in allergy.codes}
        if allergy.active and (
            "naltrexone" in allergy.substance.lower() or ev.ldn.rxnorm_ingredient in codes
        ):
            yield finding(ev, "ldn.allergy.naltrexone")


def check_liver(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    for cond in ctx.active_conditions("hepatic_failure"):
        yield finding(ev, "ldn.hepatic.failure", condition=cond.display)
    failure = {id(c) for c in ctx.active_conditions("hepatic_failure")}
    for cond in ctx.active_conditions("hepatic_impairment"):
        if id(cond) not in failure:
            yield finding(ev, "ldn.hepatic.impairment", condition=cond.display)
    enzymes: tuple[tuple[LabKind, str], ...] = (("alt", "ALT"), ("ast", "AST"))
    for kind, label in enzymes:
        lab = ctx.patient.latest_lab(kind)
        if (
            lab is not None
            and lab.value is not None
            and lab.upper_limit is not None
            and lab.value > lab.upper_limit
        ):
            yield finding(
                ev,
                "ldn.hepatic.enzymes",
                test=label,
                value=f"{lab.value:g}",
                unit=lab.unit or "",
                limit=f"{lab.upper_limit:g}",
            )


_CKD_STAGE = re.compile(r"stage\s*(3a|3b|3|4|5)\b", re.IGNORECASE)


def check_kidney(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    egfr = ctx.patient.latest_lab("egfr")
    if egfr is not None and egfr.value is not None and egfr.value < EGFR_REDUCED:
        # The rule's message carries the unit: pass the number only (no "mL/min/1.73m2" twice).
        yield finding(ev, "ldn.renal.impairment", egfr=f"{egfr.value:g}")
        return
    if egfr is not None and egfr.value is not None:
        return  # a measured normal eGFR outranks an old problem-list stage
    for cond in ctx.active_conditions("ckd"):
        if _CKD_STAGE.search(cond.display) or "end stage" in cond.display.lower():
            yield finding(ev, "ldn.renal.condition", condition=cond.display)
            return


def check_pregnancy(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    hcg = ctx.patient.latest_lab("hcg")
    positive_test = hcg is not None and (hcg.value_text or "").lower() in {"positive", "detected"}
    if ctx.patient.pregnant or ctx.active_conditions("pregnancy") or positive_test:
        yield finding(ev, "ldn.pregnancy")
    if ctx.patient.breastfeeding:
        yield finding(ev, "ldn.breastfeeding")


def check_thyroid(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    thyroid = ctx.active_meds("levothyroxine") or ctx.active_meds("thyroid_hormone")
    for med in thyroid:
        yield finding(ev, "ldn.thyroid.levothyroxine", medication=med.name)
    for cond in ctx.active_conditions("autoimmune_thyroid"):
        yield finding(ev, "ldn.thyroid.autoimmune", condition=cond.display)


def check_immune(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    for med in ctx.active_meds("immunosuppressant"):
        yield finding(ev, "ldn.immunosuppressant", medication=med.name)


def check_age(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    age = ctx.age
    if age is None:
        yield finding(ev, "ldn.age.unknown")
    elif age >= OLDER_ADULT_AGE:
        yield finding(ev, "ldn.age.older", age=age)
    if ctx.patient.frail or ctx.active_conditions("frailty"):
        yield finding(ev, "ldn.frailty")


CHECKS: tuple[Check, ...] = (
    check_opioids,
    check_surgery,
    check_addiction,
    check_liver,
    check_kidney,
    check_pregnancy,
    check_thyroid,
    check_immune,
    check_age,
    check_indication,
)


def screen(ctx: ClinicalContext, evidence: Evidence) -> tuple[Finding, ...]:
    """All findings for LDN in this patient, most severe first (stable within a severity)."""
    found = [f for check in CHECKS for f in check(ctx, evidence)]
    return tuple(sorted(found, key=lambda f: SEVERITY_ORDER[f.severity]))
