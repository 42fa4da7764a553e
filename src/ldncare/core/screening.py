"""Safety screening of one patient for LDN.

Each check asks the classified patient one question and, when the answer matters, emits a
finding built from ``rules.yaml`` (wording, severity and citations live there, reviewed as data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

from ldncare.core.context import ClinicalContext
from ldncare.core.course import (
    _INJECTION,
    naltrexone_findings,
    naltrexone_on_record,
    opioid_is_depot,
    opioid_is_long_acting,
    opioid_washouts,
)
from ldncare.core.findings import SEVERITY_ORDER, Finding, eligibility, finding
from ldncare.core.patient import LabKind, LabResult, MedicationUse, unidentified_may_still_act
from ldncare.core.renal import (
    DIAGNOSIS_BOUNDS,
    estimate_renal_function,
    is_stale,
    reconcile_with_diagnosis,
)
from ldncare.errors import EvidenceError
from ldncare.evidence.models import Evidence

#: Age from which the naltrexone label's geriatric-use section applies.
OLDER_ADULT_AGE = 65
#: eGFR (mL/min/1.73 m²) below which kidney function is reduced (CKD G3a and worse, KDIGO).
EGFR_REDUCED = 60.0
#: Age below which the naltrexone label says safe use is not established (label_naltrexone).
ADULT_AGE = 18
#: ALT/AST above this multiple of the upper limit of normal is a marked rise (livertox_naltrexone).
MARKED_ENZYME_RISE = 3.0
#: Dosing interval of extended-release injectable naltrexone (Vivitrol: every 4 weeks).
VIVITROL_INTERVAL_DAYS = 28
#: Statuses of a medicine that was taken and has ended; without an end date, when it ended is
#: unknown (cancelled, not-taken and entered-in-error records were never taken).
_ENDED_STATUSES = frozenset({"stopped", "completed"})

Check = Callable[[ClinicalContext, Evidence], Iterator[Finding]]


def _names(meds: tuple[MedicationUse, ...]) -> str:
    seen: dict[str, None] = {}
    for m in meds:
        seen.setdefault(m.name, None)
    return "; ".join(seen)


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
    # A stopped depot/implant buprenorphine has no opioid-free interval: never history.
    depots = {id(m) for m in past if opioid_is_depot(ctx, m)}
    for med in past:
        if id(med) in depots:
            last = f" (last recorded date {med.end.isoformat()})" if med.end else ""
            yield finding(ev, "ldn.opioid.depot_stopped", medication=med.name, last=last)
    past = tuple(m for m in past if id(m) not in depots)
    recent = opioid_washouts(ctx, ev)
    acting = {id(m.med) for m in ctx.medications if "opioid_acting_substance" in m.classes}
    for med, days in recent:
        assert med.end is not None
        yield finding(
            ev,
            # Kratom/tianeptine: same interval, but no deferred start (use is often unrecorded
            # and may resume), and the finding says so (course._washout_start agrees).
            "ldn.opioid.washout_opioid_acting" if id(med) in acting else "ldn.opioid.washout",
            medication=med.name,
            end_date=med.end.isoformat(),
            earliest_start=(med.end + timedelta(days=days)).isoformat(),
        )
    history = tuple(
        m for m in past if all(m is not r for r, _ in recent) and not _stop_date_missing(m)
    )
    if history:
        yield finding(ev, "ldn.opioid.history", medication=_names(history))


def _unidentified_text(med: MedicationUse) -> str:
    """One unidentified medicine for a message: the record and how it names the drug, its
    status and date, and any code it gives that ldncare does not know."""
    when = (
        f"ended {med.end.isoformat()}"
        if med.end is not None
        else (
            f"dated {med.start.isoformat()}, no stop date"
            if med.start is not None
            else "no stop date"
        )
        if med.status in _ENDED_STATUSES
        else (f"dated {med.start.isoformat()}" if med.start is not None else "undated")
    )
    text = f"{med.record or med.name} ({med.status}, {when})"
    if med.codes:
        codes = ", ".join(f"{c.system}|{c.code}" if c.system else c.code for c in med.codes)
        how = "searched for by code" if med.record else "coded only as"
        text += f", {how} {codes}, a code ldncare does not recognise"
    return text


def check_unidentified_medicines(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    """An active medicine the source names only by a reference nobody resolved: it could be an
    opioid, so LDN waits until it is identified (never dropped silently, review H1)."""
    # A medicine whose code the vocabulary knows (a ``Medication?code=`` search that matched
    # nothing still gives the code) is checked by its class (opioid, washout), not here.
    unknown = [m.med for m in ctx.medications if m.active and m.med.unidentified and not m.classes]
    if unknown:
        text = "; ".join(dict.fromkeys(_unidentified_text(m) for m in unknown))
        yield finding(ev, "ldn.medication.unidentified", medication=text)
    # Stopped or completed within the longest opioid-free interval (methadone/buprenorphine,
    # ldn.yaml long_acting), or with no stop date: it may have been such an opioid (review 24/30).
    free = ev.ldn.opioid_free_days
    if free is None:
        raise EvidenceError("ldn.yaml: opioid_free_days is required for the washout check")
    for m in ctx.medications:
        med = m.med
        if (
            m.active
            or m.classes
            or not unidentified_may_still_act(med, ctx.as_of, free.long_acting)
        ):
            continue
        yield finding(
            ev,
            "ldn.medication.unidentified_stopped",
            medication=_unidentified_text(med),
            days=str(free.long_acting),
        )


def check_surgery(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    when = ctx.patient.planned_surgery
    if when is not None and when >= ctx.as_of:
        yield finding(ev, "ldn.surgery.planned", date=when.isoformat())


def check_addiction(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    if ctx.ever_conditions("opioid_use_disorder"):
        yield finding(ev, "ldn.oud.diagnosis")
    yield from naltrexone_findings(naltrexone_on_record(ctx, ev), ev)
    for m in ctx.medications:
        med = m.med
        if m.active and "samidorphan" in m.classes:
            yield finding(ev, "ldn.opioid_antagonist.samidorphan", medication=med.name)
        # An extended-release naltrexone injection ended within its 4-week dosing interval
        # (label_vivitrol_dosing) may still act.
        last = med.end or med.start
        if (
            not m.active
            and "naltrexone" in m.classes
            and med.status in _ENDED_STATUSES
            and last is not None
            and timedelta(0) <= ctx.as_of - last < timedelta(days=VIVITROL_INTERVAL_DAYS)
            and _INJECTION.search(" ".join(filter(None, (med.name, med.dose_text))))
        ):
            yield finding(
                ev, "ldn.naltrexone.injection_recent", medication=med.name, last=last.isoformat()
            )
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
    if not any(_has_value(ctx.patient.latest_lab(kind)) for kind, _ in enzymes):
        yield finding(ev, "ldn.hepatic.tests_missing")
    for kind, label in enzymes:
        lab = ctx.patient.latest_lab(kind)
        if (
            lab is not None
            and lab.value is not None
            and lab.upper_limit is not None
            and lab.value > lab.upper_limit
        ):
            marked = lab.value > MARKED_ENZYME_RISE * lab.upper_limit
            yield finding(
                ev,
                "ldn.hepatic.enzymes_marked" if marked else "ldn.hepatic.enzymes",
                test=label,
                value=f"{lab.value:g}",
                unit=lab.unit or "",
                amount=f"{lab.value:g} {lab.unit or ''}".strip(),
                limit=f"{lab.upper_limit:g}",
            )


_CKD_STAGE = re.compile(r"stage\s*(3a|3b|3|4|5)\b", re.IGNORECASE)


def check_kidney(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    # A CKD 4-5/dialysis diagnosis beats a normal (often old) result that contradicts it
    # (core/renal.py reconcile_with_diagnosis; issue 14 second review C3).
    reconciled = reconcile_with_diagnosis(
        estimate_renal_function(ctx.patient, ctx.as_of),
        {cls: [c.display for c in ctx.active_conditions(cls)] for cls, _ in DIAGNOSIS_BOUNDS},
        ctx.as_of,
    )
    if reconciled is not None and reconciled.overrides_lab is not None:
        basis = reconciled.basis[:1].upper() + reconciled.basis[1:]
        yield finding(ev, "ldn.renal.diagnosis_over_lab", basis=basis)
        return
    egfr = ctx.patient.latest_lab("egfr")
    if egfr is not None and egfr.value is not None and egfr.value < EGFR_REDUCED:
        # The rule's message carries the unit: pass the number only (no "mL/min/1.73m2" twice).
        yield finding(ev, "ldn.renal.impairment", egfr=f"{egfr.value:g}")
        return
    if egfr is not None and egfr.value is not None:
        # A measured normal eGFR outranks a stage 1-3 problem-list entry; an old one is flagged.
        if egfr.date is not None and is_stale(egfr.date, ctx.as_of):
            yield finding(ev, "ldn.renal.stale", egfr=f"{egfr.value:g}", date=egfr.date.isoformat())
        return
    creatinine = ctx.patient.latest_lab("creatinine")
    estimate = estimate_renal_function(ctx.patient, ctx.as_of)
    if estimate is not None and estimate.method == "cockcroft_gault":
        # No eGFR: Cockcroft-Gault clearance from creatinine, age and weight (core/renal.py).
        if estimate.crcl_ml_min < EGFR_REDUCED:
            yield finding(
                ev, "ldn.renal.impairment_crcl", crcl=estimate.rounded, basis=estimate.basis
            )
        return
    if estimate is not None and estimate.method == "ckd_epi_2021":
        # No eGFR and no weight: the CKD-EPI 2021 eGFR from creatinine, age and sex grades it
        # (a creatinine on file is never silence, as a missing weight made it before).
        if estimate.crcl_ml_min < EGFR_REDUCED:
            yield finding(ev, "ldn.renal.impairment_estimated", basis=estimate.basis)
        return
    for cond in ctx.active_conditions("ckd"):
        if _CKD_STAGE.search(cond.display) or "end stage" in cond.display.lower():
            yield finding(ev, "ldn.renal.condition", condition=cond.display)
            return
    if _has_value(creatinine):
        assert creatinine is not None
        shown = f"{creatinine.value:g} {creatinine.unit or ''}".strip()
        yield finding(ev, "ldn.renal.creatinine_only", creatinine=shown)
    elif not ctx.active_conditions("ckd"):
        yield finding(ev, "ldn.renal.tests_missing")


def _has_value(lab: LabResult | None) -> bool:
    return lab is not None and lab.value is not None


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
    # A transplant or an MS drug gets the stronger warning of check_transplant_and_ms instead.
    if ctx.ever_conditions("organ_transplant"):
        return
    ms_drugs = {id(m) for m in ctx.active_meds("ms_dmt")}
    for med in ctx.active_meds("immunosuppressant"):
        if id(med) not in ms_drugs:
            yield finding(ev, "ldn.immunosuppressant", medication=med.name)


def check_age(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    age = ctx.age
    if age is None:
        yield finding(ev, "ldn.age.unknown")
    elif age >= OLDER_ADULT_AGE:
        yield finding(ev, "ldn.age.older", age=age)
    if ctx.patient.frail or ctx.active_conditions("frailty"):
        yield finding(ev, "ldn.frailty")


# --- safety-screen (issue 14) ----------------------------------------------------------------


#: Problem-list wording that records a past use while the entry itself stays "active"
#: ("History of kratom use", "Kratom use disorder, in remission").
_PAST_WORDING = re.compile(r"\b(history of|h/o|former|past|previous|in remission)\b", re.I)


def _stop_date_missing(med: MedicationUse) -> bool:
    """A medicine recorded as taken and ended, with no end date."""
    return med.status in _ENDED_STATUSES and med.end is None


def check_opioid_stop_date(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    """A stopped opioid without a stop date is not assumed old.

    The latest date the record holds for it (its start: authoredOn, effective start or
    dateAsserted in FHIR) stands in for the stop date; with no date at all the clinician is
    asked. The model keeps one start date per medicine, so that is the latest date available.
    """
    free = ev.ldn.opioid_free_days
    if free is None:
        raise EvidenceError("ldn.yaml: opioid_free_days is required for the washout check")
    for med in ctx.past_meds("opioid"):
        if not _stop_date_missing(med) or opioid_is_depot(ctx, med):
            continue
        status = med.status
        if med.start is None:
            yield finding(ev, "ldn.opioid.stop_unknown", medication=med.name, status=status)
            continue
        days = free.long_acting if opioid_is_long_acting(ctx, med) else free.short_acting
        earliest = med.start + timedelta(days=days)
        values = {"medication": med.name, "status": status, "last_date": med.start.isoformat()}
        if earliest > ctx.as_of:
            yield finding(
                ev, "ldn.opioid.washout_assumed", earliest_start=earliest.isoformat(), **values
            )
        else:
            yield finding(ev, "ldn.opioid.stop_assumed", **values)


#: Words naming an over-the-counter product whose content a name may not reveal (kratom and
#: tianeptine are sold as supplements, extracts and shots: fda2018_kratom, fda_tianeptine).
_UNRECOGNISED_PRODUCT = re.compile(
    r"\b(supplements?|extracts?|shots?|herbal|herbs?|botanicals?|elixirs?|tinctures?|tonics?|"
    r"powder)\b",
    re.IGNORECASE,
)


def check_opioid_acting(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    """Kratom / 7-OH / tianeptine: the vocabulary classes them as opioids (so check_opioids
    stops LDN while they are used and applies the washout); this asks about unlisted use and
    reads the problem list, where "kratom use" or "kratom dependence" is often the only trace."""
    for m in ctx.medications:
        if "opioid_acting_substance" in m.classes and m.med.status != "entered-in-error":
            rule = (
                "ldn.opioid_acting.tianeptine"
                if "tianeptine" in m.classes
                else "ldn.opioid_acting.ask"
            )
            yield finding(ev, rule, medication=m.med.name)
    for m in ctx.medications:
        if (
            not m.classes
            and m.med.status != "entered-in-error"
            and (m.active or m.med.end is None or m.med.end >= ctx.as_of - timedelta(days=30))
            and _UNRECOGNISED_PRODUCT.search(f"{m.med.name} {m.med.dose_text or ''}")
        ):
            yield finding(ev, "ldn.opioid_acting.unrecognised_product", medication=m.med.name)
    for cond in ctx.conditions:
        if "kratom_use" not in cond.classes:
            continue
        current = cond.active and not _PAST_WORDING.search(cond.condition.display)
        rule = "ldn.opioid_acting.condition" if current else "ldn.opioid_acting.history"
        yield finding(ev, rule, condition=cond.condition.display)


def check_transplant_and_ms(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    transplants = ctx.ever_conditions("organ_transplant")
    if transplants:
        drugs = _names(ctx.active_meds("immunosuppressant"))
        yield finding(
            ev,
            "ldn.immunosuppressant.transplant",
            condition=transplants[0].display,
            on_drugs=f" with {drugs}" if drugs else "",
        )
    for med in ctx.active_meds("ms_dmt"):
        yield finding(ev, "ldn.immunosuppressant.ms_dmt", medication=med.name)


def check_opioid_companions(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    for m in ctx.medications:
        # A product that itself contains an opioid (buprenorphine/naloxone) is already a stop.
        if not m.active or "opioid_companion" not in m.classes or "opioid" in m.classes:
            continue
        reason = (
            "for opioid-induced constipation"
            if "opioid_antagonist" not in m.classes
            else "as an overdose rescue for people who take opioids"
        )
        yield finding(ev, "ldn.opioid_companion", medication=m.med.name, reason=reason)
    for med in ctx.active_meds("opioid_antidiarrheal"):
        yield finding(ev, "ldn.opioid_antidiarrheal", medication=med.name)


def check_adult(ctx: ClinicalContext, ev: Evidence) -> Iterator[Finding]:
    age = ctx.age
    if age is None:
        yield finding(ev, "ldn.age.unconfirmed", why="No birth date is recorded")
    elif age < ADULT_AGE:
        yield finding(ev, "ldn.age.minor", age=age)


# --- end safety-screen ----------------------------------------------------------------------


CHECKS: tuple[Check, ...] = (
    check_opioids,
    check_unidentified_medicines,
    check_opioid_stop_date,
    check_opioid_acting,
    check_opioid_companions,
    check_surgery,
    check_addiction,
    check_liver,
    check_kidney,
    check_pregnancy,
    check_thyroid,
    check_immune,
    check_transplant_and_ms,
    check_age,
    check_adult,
    check_indication,
)


def screen(ctx: ClinicalContext, evidence: Evidence) -> tuple[Finding, ...]:
    """All findings for LDN in this patient, most severe first (stable within a severity)."""
    found = [f for check in CHECKS for f in check(ctx, evidence)]
    if eligibility(tuple(found)) == "not_recommended":
        found = list(_held_not_continued(ctx, evidence, found))
    # A minor leads: LDN is not for under-18s whatever else the record holds (review item 6).
    return tuple(sorted(found, key=lambda f: (SEVERITY_ORDER[f.severity], f.rule not in _LEADING)))


#: Findings listed first within their severity.
_LEADING = frozenset({"ldn.age.minor"})


def _held_not_continued(
    ctx: ClinicalContext, ev: Evidence, found: list[Finding]
) -> Iterator[Finding]:
    """LDN already taken when the screen says no: the plan holds it (course "withheld"), so
    the note must not say it "continues from the current dose"; with an opioid in use it says
    what to do (hold LDN while the opioid is used, or stop the opioid)."""
    current = {med.name: dose for med, dose in naltrexone_on_record(ctx, ev).low_dose}
    opioids = _names(ctx.active_meds("opioid"))
    for f in found:
        if f.rule != "ldn.naltrexone.ldn_current":
            yield f
            continue
        for name, dose in current.items():
            if name not in f.message:
                continue
            if opioids:
                yield finding(
                    ev, "ldn.naltrexone.ldn_held_opioid", medication=name, dose=dose, opioid=opioids
                )
            else:
                yield finding(ev, "ldn.naltrexone.ldn_held", medication=name, dose=dose)
            break
        else:
            yield f
