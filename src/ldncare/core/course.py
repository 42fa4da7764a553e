"""The LDN course: how the schedule follows the record, not only the clinician's options.

Screening says what is found; this module decides what the schedule does about it:

- naltrexone already on record: full dose (above the LDN maximum) means no LDN start; LDN means
  continue (or step up to the target) from the current dose, never a restart at the start dose;
  an unreadable dose means no schedule until the dose is confirmed;
- the "start low" advice (frailty, older age, reduced kidney or liver function) lowers the start
  to the bottom of the cited start range and keeps the climb within the cited titration window;
  the clinician's own start dose, step length or slow option win;
- planned surgery before the course would reach its review moves the first dose after the
  operation plus the opioid-free interval, so no step runs through the operation.

Pure: the record and the evidence in, titration options and the findings that explain them out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from ldncare.core.context import ClinicalContext
from ldncare.core.findings import Finding, eligibility, finding
from ldncare.core.patient import MedicationUse, is_rxnorm
from ldncare.core.quantity import Dose, find_dose, format_decimal
from ldncare.core.titration import MAX_STEP_DAYS, Schedule, TitrationOptions
from ldncare.errors import EvidenceError
from ldncare.evidence.models import Evidence, LdnDosing

#: Statuses of an order that is on the chart but not being taken now.
NOT_TAKEN_STATUSES = frozenset({"intended", "on-hold"})

CourseKind = Literal["new", "continue", "adjust", "withheld", "not_started"]

#: Screening rules whose advice is "start at the low end, titrate slowly", with how the reason
#: reads in the schedule's explanation.
START_LOW_RULES: dict[str, str] = {
    "ldn.frailty": "frailty",
    "ldn.age.older": "older age",
    "ldn.renal.impairment": "reduced kidney function",
    "ldn.renal.impairment_crcl": "reduced kidney function",
    "ldn.renal.impairment_estimated": "reduced kidney function",
    "ldn.renal.condition": "chronic kidney disease",
    "ldn.hepatic.impairment": "liver impairment",
}


def opioid_is_long_acting(ctx: ClinicalContext, med: MedicationUse) -> bool:
    for m in ctx.medications:
        if m.med is med:
            return bool(m.classes & {"opioid_long_acting", "methadone", "buprenorphine"})
    return False


def opioid_is_depot(ctx: ClinicalContext, med: MedicationUse) -> bool:
    """A depot injection or implant (Sublocade, Brixadi, Buvidal, Probuphine): no washout."""
    return any(m.med is med and "opioid_depot" in m.classes for m in ctx.medications)


def opioid_washouts(ctx: ClinicalContext, ev: Evidence) -> tuple[tuple[MedicationUse, int], ...]:
    """Stopped opioids with a stop date whose opioid-free interval (days, ldn.yaml) has not
    passed on the day of the plan."""
    free = ev.ldn.opioid_free_days
    if free is None:
        raise EvidenceError("ldn.yaml: opioid_free_days is required for the washout check")
    recent: list[tuple[MedicationUse, int]] = []
    for med in ctx.past_meds("opioid"):
        if med.end is None or opioid_is_depot(ctx, med):
            continue
        days = free.long_acting if opioid_is_long_acting(ctx, med) else free.short_acting
        if med.end + timedelta(days=days) > ctx.as_of:
            recent.append((med, days))
    return tuple(recent)


#: The only contraindication a deferred start may wait out: a prescribed opioid stopped on a
#: recorded date. Kratom, 7-OH and tianeptine (use is unrecorded and relapses) and opioids
#: with no stop date (washout_assumed) stay "not recommended".
_DEFERRABLE = frozenset({"ldn.opioid.washout"})


def _washout_start(
    ctx: ClinicalContext, ev: Evidence, findings: tuple[Finding, ...]
) -> tuple[date, tuple[MedicationUse, ...]] | None:
    """The first day after every opioid-free interval, when that wait is the only reason LDN
    is not recommended; ``None`` otherwise."""
    stops = {f.rule for f in findings if f.severity == "contraindication"}
    if not stops or not stops <= _DEFERRABLE:
        return None
    washouts = opioid_washouts(ctx, ev)
    classes = {id(m.med): m.classes for m in ctx.medications}
    if not washouts or any(
        "opioid_acting_substance" in classes.get(id(med), frozenset()) for med, _ in washouts
    ):
        return None
    earliest = max(med.end + timedelta(days=days) for med, days in washouts if med.end)
    return earliest, tuple(med for med, _ in washouts)


@dataclass(frozen=True)
class NaltrexoneOnRecord:
    """Active naltrexone, sorted by what its dose says."""

    full_dose: tuple[tuple[MedicationUse, Dose], ...] = ()
    low_dose: tuple[tuple[MedicationUse, Dose], ...] = ()
    unknown: tuple[MedicationUse, ...] = ()
    #: LDN ordered but not being taken now (intended, on hold, or starting later).
    not_taken: tuple[tuple[MedicationUse, Dose], ...] = ()

    @property
    def current_ldn(self) -> tuple[MedicationUse, Dose] | None:
        """The LDN to continue from: only when every naltrexone on record is a readable low dose
        (the highest one when several are)."""
        if self.full_dose or self.unknown or not self.low_dose:
            return None
        return max(self.low_dose, key=lambda pair: pair[1].mg_value)


#: "naltrexone 8 mg", "naltrexone hydrochloride 8 MG": the dose written after the ingredient.
_NALTREXONE_DOSE = re.compile(
    r"naltrexone(?:\s+(?:hydrochloride|hcl))?\s*(\d+(?:[.,]\d+)?\s*(?:mg|mcg|µg|μg|ug|g))\b",
    re.IGNORECASE,
)
#: Extended-release injectable naltrexone (Vivitrol 380 mg every 4 weeks): not a daily dose.
_INJECTION = re.compile(r"\b(vivitrol|inject\w*|intramuscular|i\.?m\.? every)\b", re.IGNORECASE)
#: A combination strength "8 mg/90 mg" (one amount per ingredient, in the product's order).
_COMBINATION = re.compile(
    r"(\d+(?:[.,]\d+)?\s*(?:mg|mcg|g))\s*/\s*(\d+(?:[.,]\d+)?\s*(?:mg|mcg|g))\b", re.IGNORECASE
)
#: Combination products that contain naltrexone, with the position of naltrexone in their
#: labelled strength (the ingredient order of vocabulary/drugs.yaml ``brands``): Contrave is
#: naltrexone 8 mg / bupropion 90 mg; Embeda and Troxyca list the opioid first.
_COMBINATION_POSITION: dict[str, int] = {"contrave": 0, "embeda": 1, "troxyca": 1}


def naltrexone_dose(med: MedicationUse) -> Dose | None:
    """The naltrexone dose of a medicine, in mg: the dose text first, then the name. A
    combination strength ("Contrave 8 mg/90 mg") gives its naltrexone part: the amount written
    after "naltrexone", else the product's labelled order; ``None`` when it cannot be told."""
    texts = [t for t in (med.dose_text, med.name) if t]
    everything = " ".join(texts).lower()
    for text in texts:
        named = _NALTREXONE_DOSE.search(text) if "/" in text else None
        if named is not None:  # "naltrexone HCl 8 MG / bupropion HCl 90 MG"
            return find_dose(named.group(1))
        pair = _COMBINATION.search(text)
        if pair is None:
            dose = find_dose(text)
            if dose is not None:
                return dose
            continue
        position = next((i for b, i in _COMBINATION_POSITION.items() if b in everything), None)
        return None if position is None else find_dose(pair.group(position + 1))
    return None


def active_naltrexone(ctx: ClinicalContext, ev: Evidence) -> tuple[MedicationUse, ...]:
    """Active naltrexone by name or brand (the vocabulary), or by its RxNorm ingredient code
    (ldn.yaml ``rxnorm_ingredient``) under any local name."""
    code = ev.ldn.rxnorm_ingredient
    return tuple(
        m.med
        for m in ctx.medications
        if m.active
        and (
            "naltrexone" in m.classes
            or any(c.code == code and is_rxnorm(c.system) for c in m.med.codes)
        )
    )


def naltrexone_on_record(ctx: ClinicalContext, ev: Evidence) -> NaltrexoneOnRecord:
    full: list[tuple[MedicationUse, Dose]] = []
    low: list[tuple[MedicationUse, Dose]] = []
    unknown: list[MedicationUse] = []
    not_taken: list[tuple[MedicationUse, Dose]] = []
    maximum = ev.ldn.max_daily_dose.mg_value
    for med in active_naltrexone(ctx, ev):
        dose = naltrexone_dose(med)
        if dose is None or dose.mg_value <= 0:
            unknown.append(med)
        elif dose.mg_value > maximum:
            full.append((med, dose.to_mg()))
        elif med.status in NOT_TAKEN_STATUSES or (med.start is not None and med.start > ctx.as_of):
            not_taken.append((med, dose.to_mg()))
        else:
            low.append((med, dose.to_mg()))
    return NaltrexoneOnRecord(tuple(full), tuple(low), tuple(unknown), tuple(not_taken))


def naltrexone_findings(rec: NaltrexoneOnRecord, ev: Evidence) -> Iterator[Finding]:
    maximum = ev.ldn.max_daily_dose.to_mg()
    for med, dose in rec.full_dose:
        if _INJECTION.search(" ".join(filter(None, (med.name, med.dose_text)))):
            yield finding(ev, "ldn.naltrexone.injection", medication=med.name)
            continue
        yield finding(
            ev, "ldn.naltrexone.full_dose", medication=med.name, dose=dose, maximum=maximum
        )
    for med in rec.unknown:
        yield finding(ev, "ldn.naltrexone.dose_unknown", medication=med.name, maximum=maximum)
    for med, dose in rec.low_dose:
        since = f" since {med.start.isoformat()}" if med.start is not None else ""
        yield finding(ev, "ldn.naltrexone.ldn_current", medication=med.name, dose=dose, since=since)
    for med, dose in rec.not_taken:
        yield finding(
            ev, "ldn.naltrexone.ldn_not_taken", medication=med.name, dose=dose, status=med.status
        )


@dataclass(frozen=True)
class Course:
    """What kind of course the schedule is, the options it is built from, and why."""

    kind: CourseKind
    options: TitrationOptions
    findings: tuple[Finding, ...] = ()
    current_dose: Dose | None = None

    @property
    def deferred_for_washout(self) -> bool:
        """The start waits out an opioid-free interval (the plan's only contraindication)."""
        return any(f.rule == "schedule.washout_deferred" for f in self.findings)

    @property
    def schedules(self) -> bool:
        return self.kind in ("new", "continue", "adjust")

    def to_contract(self) -> dict[str, Any]:
        current = self.current_dose
        return {
            "kind": self.kind,
            "current_dose": (
                {"value": float(current.mg_value), "unit": "mg"} if current is not None else None
            ),
            "start": self.options.start.isoformat() if self.schedules else None,
            "rules": [f.rule for f in self.findings],
        }


Titrate = Callable[[TitrationOptions, LdnDosing], Schedule]


def _weeks(schedule: Schedule) -> str:
    days = (schedule.steps[-1].start_date - schedule.start).days
    return format_decimal((Decimal(days) / 7).quantize(Decimal("0.1")).normalize())


def _slow_start(options: TitrationOptions, dosing: LdnDosing) -> TitrationOptions:
    """The lowest cited start, and steps as long as the cited titration window allows."""
    start = options.start_dose or dosing.start_dose.min.to_mg()
    if options.step_days is not None or options.slow:
        return replace(options, start_dose=start)
    target = (options.target_dose or dosing.defaults.target_dose).to_mg()
    step = (options.step_dose or dosing.defaults.step_dose).to_mg()
    increments = 0
    dose = start.mg_value
    while dose < target.mg_value and step.mg_value > 0:
        dose = min(dose + step.mg_value, target.mg_value)
        increments += 1
    step_days = dosing.defaults.step_days
    if increments:
        step_days = max(step_days, min(MAX_STEP_DAYS, dosing.titration_weeks.max * 7 // increments))
    return replace(options, start_dose=start, step_days=step_days)


def plan_course(
    ctx: ClinicalContext,
    ev: Evidence,
    options: TitrationOptions,
    findings: tuple[Finding, ...],
    titrate: Titrate,
) -> Course:
    """Decide the course from the record; ``titrate`` builds (and validates) a schedule."""
    dosing = ev.ldn
    rec = naltrexone_on_record(ctx, ev)
    if rec.full_dose:
        return Course("not_started", options)
    if rec.unknown:
        return Course("withheld", options)
    current = rec.current_ldn
    explain: list[Finding] = []
    deferral = _washout_start(ctx, ev, findings) if current is None else None
    if deferral is not None:
        # A deferred start, like the surgery deferral: the first dose on the first day after
        # the opioid-free interval; the washout finding stays (LDN is contraindicated before).
        earliest, stopped = deferral
        options = replace(options, start=max(options.start, earliest))
        explain.append(
            finding(
                ev,
                "schedule.washout_deferred",
                medication="; ".join(dict.fromkeys(m.name for m in stopped)),
                start=options.start.isoformat(),
            )
        )
    elif eligibility(findings) == "not_recommended":
        # No schedule and no start day when the screening says no: LDN already taken is held
        # (withheld), anything else is not started; schedule notes would contradict the verdict.
        return Course(
            "withheld" if current is not None else "not_started",
            options,
            current_dose=current[1] if current else None,
        )
    kind: CourseKind = "new"
    if current is not None:
        med, dose = current
        target = (options.target_dose or dosing.defaults.target_dose).to_mg()
        kind = "adjust" if dose > target else "continue"
        options = replace(options, current_dose=dose, current_since=med.start, holds={})
        rules = {f.rule for f in findings}
        reasons = [text for rule, text in START_LOW_RULES.items() if rule in rules]
        if reasons and kind == "continue" and options.step_days is None and not options.slow:
            # The "titrate slowly" advice holds for the steps still to come: they stretch to the
            # slow end of the cited titration window, as for a new course (the clinician's own
            # step length or slow option wins).
            default = titrate(options, dosing)
            increments = len(default.steps) - 1
            step_days = dosing.defaults.step_days
            if increments:
                step_days = max(
                    step_days, min(MAX_STEP_DAYS, dosing.titration_weeks.max * 7 // increments)
                )
            if increments and step_days > dosing.defaults.step_days:
                options = replace(options, step_days=step_days)
                schedule = titrate(options, dosing)
                explain.append(
                    finding(
                        ev,
                        "schedule.slow_continue",
                        reasons=" and ".join(dict.fromkeys(reasons)),
                        current=dose,
                        target=schedule.steps[-1].dose,
                        weeks=_weeks(schedule),
                        default_weeks=_weeks(default),
                    )
                )
    else:
        rules = {f.rule for f in findings}
        reasons = [text for rule, text in START_LOW_RULES.items() if rule in rules]
        default = titrate(options, dosing)
        slow = _slow_start(options, dosing) if reasons else options
        if reasons and slow != options:
            options = slow
            schedule = titrate(options, dosing)
            lo, hi = dosing.start_dose.min.to_mg(), dosing.start_dose.max.to_mg()
            explain.append(
                finding(
                    ev,
                    "schedule.start_low",
                    reasons=" and ".join(dict.fromkeys(reasons)),
                    start=schedule.steps[0].dose,
                    start_range=f"{format_decimal(lo.mg_value)} to {hi}",
                    target=schedule.steps[-1].dose,
                    weeks=_weeks(schedule),
                    default_weeks=_weeks(default),
                )
            )
    options, surgery = _surgery(ctx, ev, options, titrate, continuing=current)
    explain += surgery
    when = ctx.patient.planned_surgery
    if (
        any(f.rule == "schedule.surgery_imminent_ldn" for f in surgery)
        and when is not None
        and options.start <= when
    ):
        # No schedule row may say "keep taking it" when the last dose before the operation is
        # due today or has passed: the LDN already taken is held.
        kind = "withheld"
    return Course(kind, options, tuple(explain), current[1] if current else None)


def _surgery(
    ctx: ClinicalContext,
    ev: Evidence,
    options: TitrationOptions,
    titrate: Titrate,
    *,
    continuing: tuple[MedicationUse, Dose] | None,
) -> tuple[TitrationOptions, list[Finding]]:
    when: date | None = ctx.patient.planned_surgery
    free = ev.ldn.opioid_free_days
    if when is None or free is None:
        return options, []
    restart = when + timedelta(days=free.short_acting)
    if when < ctx.as_of or when < options.start:
        if options.start >= restart:
            return options, []
        # Operated on recently: the first dose waits for the opioid-free interval.
        moved = replace(options, start=restart, current_since=None)
        return moved, [
            finding(
                ev,
                "schedule.surgery_recent",
                date=when.isoformat(),
                start=restart.isoformat(),
                short_days=free.short_acting,
                long_days=free.long_acting,
            )
        ]
    imminent: list[Finding] = []
    stop_days = _stop_days(ev)
    if continuing is not None and when - ctx.as_of <= timedelta(days=stop_days):
        # The planned last dose (surgery minus the stop interval) is today or already past: no
        # further dose, and the anaesthetist has to know now.
        days = (when - ctx.as_of).days
        imminent.append(
            finding(
                ev,
                "schedule.surgery_imminent_ldn",
                medication=continuing[0].name,
                date=when.isoformat(),
                when={0: "today", 1: "tomorrow"}.get(days, f"in {days} days"),
                stop_days=stop_days,
            )
        )
    options, found = _surgery_plan(ctx, ev, options, titrate, when, continuing=continuing)
    return options, imminent + found


def _stop_days(ev: Evidence) -> int:
    """Days before surgery on which oral LDN is last taken (ldn.yaml ``surgery_stop``)."""
    stop = ev.ldn.surgery_stop
    return stop.days_before if stop is not None else 1


def _last_dose(ev: Evidence, when: date) -> str:
    return (when - timedelta(days=_stop_days(ev))).isoformat()


def _surgery_plan(
    ctx: ClinicalContext,
    ev: Evidence,
    options: TitrationOptions,
    titrate: Titrate,
    when: date,
    *,
    continuing: tuple[MedicationUse, Dose] | None,
) -> tuple[TitrationOptions, list[Finding]]:
    free = ev.ldn.opioid_free_days
    assert free is not None
    restart = when + timedelta(days=free.short_acting)
    planned = titrate(options, ev.ldn)
    if continuing is not None and when > planned.review_date:
        # Already on LDN: the operation still needs a stop before it and a restart after it,
        # whatever the review decides (a warning with the earliest restart day).
        return options, [
            finding(
                ev,
                "schedule.surgery_current_ldn",
                medication=continuing[0].name,
                date=when.isoformat(),
                last_dose=_last_dose(ev, when),
                stop_days=_stop_days(ev),
                restart=restart.isoformat(),
                short_days=free.short_acting,
                long_days=free.long_acting,
            )
        ]
    if when > planned.review_date:
        return options, [
            finding(
                ev,
                "schedule.surgery_after_review",
                date=when.isoformat(),
                review=planned.review_date.isoformat(),
            )
        ]
    start = restart
    before = (
        f"take the last dose of the current LDN on {_last_dose(ev, when)} at the latest "
        f"({_stop_days(ev)} days before the operation; agree it with the surgical and "
        "anaesthetic team), and restart it from this day"
        if continuing is not None
        else "no LDN is taken before the operation"
    )
    moved = replace(options, start=start, current_since=None)
    return moved, [
        finding(
            ev,
            "schedule.surgery_deferred",
            date=when.isoformat(),
            start=start.isoformat(),
            before=before,
            short_days=free.short_acting,
            long_days=free.long_acting,
        )
    ]
