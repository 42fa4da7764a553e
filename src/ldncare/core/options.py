"""Alternatives and add-ons to LDN, chosen from the patient's history.

Each drug monograph becomes an :class:`Option` with a suitability (preferred, suitable,
caution, avoid), the reasons for it (rule id, message, citations), a titration schedule fitted
to the patient (renal band, hepatic halving, CPIC start-dose reduction) and the patient's daily
maximum. The wording and sources of every reason live in ``rules/options.yaml``; this module
only decides which rules apply. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ldncare.core.context import ClinicalContext
from ldncare.core.daily_dose import total_daily
from ldncare.core.patient import MedicationUse
from ldncare.core.quantity import format_decimal
from ldncare.core.renal import (
    DIAGNOSIS_BOUNDS,
    RenalFunction,
    estimate_renal_function,
    reconcile_with_diagnosis,
)
from ldncare.evidence.models import Evidence
from ldncare.evidence.monographs import Monograph, RenalBand, Titration

#: ``current``: the patient already takes this drug - it is reviewed (continue, optimise,
#: reduce or switch), never offered as a new start. Added to ``ldncare.plan/1`` in issue 14;
#: the other four values keep their meaning.
Suitability = Literal["current", "preferred", "suitable", "caution", "avoid"]
SUITABILITY_ORDER: dict[str, int] = {
    "current": 0,
    "preferred": 1,
    "suitable": 2,
    "caution": 3,
    "avoid": 4,
}
#: What to do with a current medicine: ``reduce`` (dose above the patient's maximum),
#: ``switch`` (a contraindication applies), ``review`` (a warning applies), ``optimise`` (below
#: the usual target), ``continue``.
Advice = Literal["reduce", "switch", "review", "optimise", "continue"]
#: Classes of which a second medicine is never added (issue 14): the option's drug class and
#: the vocabulary class that recognises the medicines of that class.
SAME_CLASS: dict[str, tuple[str, str]] = {
    "snri": ("snri", "an SNRI"),
    "tca": ("tca", "a tricyclic"),
    "gabapentinoid": ("gabapentinoid", "a gabapentinoid"),
}
#: Beers 2023 falls criterion, by option class: what the criterion calls the drugs.
FALLS_CLASSES = {
    "gabapentinoid": "antiepileptics such as gabapentinoids",
    "snri": "antidepressants (SNRIs)",
    "tca": "antidepressants (tricyclics)",
    "opioid": "opioids",
}
ADULT_AGE = 18
#: The antidepressant boxed warning covers children, adolescents and young adults; the labels
#: saw no increase over age 24.
ANTIDEPRESSANT_YOUNG_MAX_AGE = 24

#: Medicines that add to serotonin syndrome risk (MAOIs are handled on their own).
SEROTONERGIC_CLASSES = ("ssri", "snri", "tca", "triptan", "lithium", "serotonergic", "tramadol")
#: Medicines that add to gabapentinoid respiratory depression (FDA 2019).
CNS_DEPRESSANT_CLASSES = (
    "opioid",
    "opioid_long_acting",
    "buprenorphine",
    "methadone",
    "tramadol",
    "benzodiazepine",
    "cns_depressant",
)
MAOI_WASHOUT_DAYS = 14  # labels: not within 14 days of stopping an MAOI


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reason(_Frozen):
    rule: str
    message: str
    citations: tuple[str, ...]
    severity: Literal["contraindication", "warning", "info"]
    #: Why the rule holds (its ``rationale`` in the rules file); added to plan/1 in the
    #: issue 14 review.
    rationale: str = ""


class ScheduleStep(_Frozen):
    start_date: date
    #: Last day of this step; ``None`` for the step the patient stays on.
    end_date: date | None
    #: Total daily dose in mg.
    dose_mg: Decimal
    doses_per_day: int
    time_of_day: str


class Option(_Frozen):
    drug: str
    name: str
    suitability: Suitability
    combinable_with_ldn: bool
    reasons: tuple[Reason, ...]
    schedule: tuple[ScheduleStep, ...]
    max_daily_dose_mg: Decimal | None
    nnt: Decimal | None = None
    #: For a current medicine: the records it was recognised in, the daily total when the
    #: record gives it, and what to do.
    taking: tuple[str, ...] = ()
    current_daily_mg: Decimal | None = None
    advice: Advice | None = None

    def citation_ids(self) -> tuple[str, ...]:
        return tuple(c for r in self.reasons for c in r.citations)

    def to_contract(self) -> dict[str, Any]:
        """The ``options[]`` entry of the plan contract (``ldncare.plan/1``)."""
        return {
            "drug": self.drug,
            "name": self.name,
            "suitability": self.suitability,
            "combinable_with_ldn": self.combinable_with_ldn,
            "reasons": [
                {
                    "message": r.message,
                    "citations": list(r.citations),
                    "rule": r.rule,
                    "rationale": r.rationale,
                }
                for r in self.reasons
            ],
            "schedule": [
                {
                    "start_date": s.start_date.isoformat(),
                    "end_date": s.end_date.isoformat() if s.end_date else None,
                    "dose_mg": _number(s.dose_mg),
                    "doses_per_day": s.doses_per_day,
                    "time_of_day": s.time_of_day,
                }
                for s in self.schedule
            ],
            "max_daily_dose_mg": (
                None if self.max_daily_dose_mg is None else _number(self.max_daily_dose_mg)
            ),
        } | self._current_contract()

    def _current_contract(self) -> dict[str, Any]:
        """Only a current medicine carries ``current`` (absent otherwise: plan/1 unchanged)."""
        if self.suitability != "current":
            return {}
        return {
            "current": {
                "medicines": list(self.taking),
                "daily_dose_mg": (
                    None if self.current_daily_mg is None else _number(self.current_daily_mg)
                ),
                "advice": self.advice,
            }
        }


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class _Assessment:
    evidence: Evidence
    mono: Monograph
    reasons: list[Reason] = field(default_factory=list)
    #: Multiplies every scheduled dose and the maximum (venlafaxine in hepatic impairment).
    scale: Decimal = Decimal(1)
    #: Multiplies the first scheduled dose only (CPIC start-dose reductions).
    first_factor: Decimal = Decimal(1)
    band: RenalBand | None = None
    #: Active records of this very drug: it is current, not a new start.
    current: list[MedicationUse] = field(default_factory=list)
    #: No adult schedule (under 18).
    no_schedule: bool = False
    #: Why ``scale`` is below 1 (hepatic impairment, creatinine clearance), for messages.
    reduced_for: list[str] = field(default_factory=list)
    #: Conditions named by favourable reasons (reworded when the option is avoided).
    favours: list[str] = field(default_factory=list)
    #: The lowest label dose limit that applies (tramadol: kidney, age, liver), in mg a day.
    limit_mg: Decimal | None = None

    def add(self, rule_id: str, **params: object) -> None:
        if self.current and f"{rule_id}.current" in self.evidence.rules:
            # A medicine already taken: worded as a current combination, not as "adding".
            rule_id = f"{rule_id}.current"
        rule = self.evidence.rule(rule_id)
        values = _Params({k: str(v) for k, v in params.items()})
        values.setdefault("drug", self.mono.name)
        self.reasons.append(
            Reason(
                rule=rule.id,
                message=rule.message.format_map(values),
                citations=_cited_for(self.mono, rule.citations, self.evidence.monographs),
                severity=rule.severity,
                rationale=rule.rationale or "",
            )
        )

    def has(self, severity: str) -> bool:
        return any(r.severity == severity for r in self.reasons)

    @property
    def suitability(self) -> Suitability:
        if self.current:
            return "current"
        severities = {r.severity for r in self.reasons}
        if "contraindication" in severities:
            return "avoid"
        if "warning" in severities:
            return "caution"
        if any(r.rule.startswith("option.favour.") for r in self.reasons):
            return "preferred"
        return "suitable"


def _cited_for(
    mono: Monograph, citations: tuple[str, ...], drugs: Iterable[str]
) -> tuple[str, ...]:
    """A rule shared by several drugs cites only what bears on this one: the label of another
    option drug (``label_<drug id>``) is left out unless this drug's monograph cites it too
    (the under-18 reason of the capsaicin patch does not cite gabapentin's label). Guidelines,
    reviews and other labels (naltrexone's) stay. Never leaves a reason uncited."""
    own = {c for _, cites in mono.citing() for c in cites}
    others = {f"label_{d}" for d in drugs if d != mono.id}
    kept = tuple(c for c in citations if c not in others or c in own)
    return kept or citations


def _names(items: Iterable[Any]) -> str:
    seen: list[str] = []
    for item in items:
        label = item.name if isinstance(item, MedicationUse) else item.display
        if label not in seen:
            seen.append(label)
    return ", ".join(seen)


def _other_meds(
    ctx: ClinicalContext, classes: Iterable[str], mono: Monograph
) -> list[MedicationUse]:
    """Active medicines in any of ``classes``, leaving out the candidate drug itself."""
    out: list[MedicationUse] = []
    for cls in classes:
        for med in ctx.active_meds(cls):
            if mono.matches(med.name) or med in out:
                continue
            out.append(med)
    return out


def _current_records(ctx: ClinicalContext, mono: Monograph) -> list[MedicationUse]:
    """Active records of the candidate drug itself (by generic or brand name)."""
    return [cm.med for cm in ctx.medications if cm.active and mono.matches(cm.med.name)]


def _recent_maoi(ctx: ClinicalContext, start: date) -> list[MedicationUse]:
    out: list[MedicationUse] = []
    for cm in ctx.medications:
        if "maoi" not in cm.classes:
            continue
        ended = cm.med.end
        recent = ended is not None and (start - ended).days < MAOI_WASHOUT_DAYS
        if cm.active or recent:
            out.append(cm.med)
    return out


def _conditions(ctx: ClinicalContext, *classes: str) -> list[Any]:
    found: list[Any] = []
    for cls in classes:
        for cond in ctx.active_conditions(cls):
            if cond not in found:
                found.append(cond)
    return found


def _phenotype(ctx: ClinicalContext, gene: str) -> str | None:
    for key, value in ctx.patient.phenotypes.items():
        if key.strip().upper() == gene:
            text = value.strip().lower().replace("-", "").replace("_", " ")
            for kind in ("ultrarapid", "poor", "intermediate", "rapid", "normal", "extensive"):
                if kind in text:
                    return kind
    return None


def _is_breastfeeding(ctx: ClinicalContext) -> bool:
    return bool(ctx.patient.breastfeeding) or bool(ctx.active_conditions("breastfeeding"))


def _is_pregnant(ctx: ClinicalContext) -> bool:
    return bool(ctx.patient.pregnant) or bool(ctx.active_conditions("pregnancy"))


def _assess(a: _Assessment, ctx: ClinicalContext, renal: RenalFunction | None, start: date) -> None:
    mono = a.mono
    cls = mono.drug_class
    a.current = _current_records(ctx, mono)
    if mono.line == "first":
        a.add("option.first_line")
    else:
        a.add("option.second_line")
    if cls == "opioid":
        a.add("option.tramadol.rescue_only")
        a.add("option.opioid.not_with_ldn")
    _assess_age(a, ctx)
    _assess_duplicates(a, ctx)

    # Kidneys: gabapentinoid bands, duloxetine limit, venlafaxine reduction, tramadol limit.
    if renal is None and _renal_dependent(mono):
        a.add("option.renal.unknown")
    elif renal is not None and _renal_dependent(mono):
        if renal.method == "ckd_epi_2021":
            a.add("option.renal.ckd_epi", basis=renal.basis)
        elif renal.method == "diagnosis" and renal.overrides_lab is not None:
            a.add("option.renal.diagnosis_over_lab", drug=mono.name, basis=renal.basis)
        elif renal.method == "diagnosis":
            a.add("option.renal.from_diagnosis", basis=renal.basis)
        if renal.stale and renal.overrides_lab is None:
            a.add("option.renal.stale", drug=mono.name, basis=renal.basis)
    if renal is not None and (mono.renal_bands or mono.id == "duloxetine"):
        if mono.renal_bands:
            band = mono.renal_band(renal.crcl_ml_min)
            if band is not None and band.max_crcl is not None:
                a.band = band
                a.add(
                    "option.renal.band",
                    crcl=renal.shown,
                    basis=renal.basis,
                    low=band.daily_min.mg_value,
                    high=band.daily_max.mg_value,
                    frequency=band.frequency,
                    band=band.label,
                )
        elif renal.crcl_ml_min < 30:
            a.add("option.duloxetine.crcl30", crcl=renal.shown, basis=renal.basis)
    if mono.id == "venlafaxine" and renal is not None and renal.crcl_ml_min < 70:
        # Label: 50 % or more in severe impairment (CrCl < 30) or haemodialysis; at least
        # 25 % in mild to moderate impairment (both label versions agree on CrCl 30-70).
        cut = 50 if renal.crcl_ml_min < 30 or ctx.active_conditions("dialysis") else 25
        a.scale = min(a.scale, Decimal(100 - cut) / 100)
        a.reduced_for.append(f"creatinine clearance {renal.shown} mL/min")
        if cut == 50:
            effect = "the schedule and maximum here are halved."
        else:
            # 75 % of the capsule strengths (56.25 mg) is no dose to prescribe: the maximum is
            # reduced and the prescriber sets the dose.
            a.no_schedule = True
            effect = "the maximum here is reduced by 25 %; set the reduced dose individually."
        a.add(
            "option.renal.venlafaxine",
            crcl=renal.shown,
            basis=renal.basis,
            cut=cut,
            effect=effect,
        )

    _assess_dose_limits(a, ctx, renal)

    # Liver.
    liver = _conditions(ctx, "hepatic_failure", "hepatic_impairment")
    if liver and mono.id == "duloxetine":
        a.add("option.hepatic.duloxetine", conditions=_names(liver))
    if liver and mono.id == "venlafaxine":
        a.scale = min(a.scale, Decimal("0.5"))
        a.reduced_for.append(_names(liver))
        a.add("option.hepatic.venlafaxine", conditions=_names(liver))

    # Serotonin syndrome: SNRIs, tricyclics, tramadol.
    if cls in ("snri", "tca", "opioid"):
        maoi = _recent_maoi(ctx, start)
        if maoi:
            a.add("option.serotonergic.maoi", meds=_names(maoi))
        others = [m for m in _other_meds(ctx, SEROTONERGIC_CLASSES, mono) if m not in maoi]
        if others:
            a.add("option.serotonergic.caution", meds=_names(others))

    if mono.id == "venlafaxine":
        qt = _other_meds(ctx, ("qt_prolonging",), mono)
        if qt:
            a.add("option.venlafaxine.qt_drugs", meds=_names(qt))
        htn = _conditions(ctx, "hypertension")
        if htn:
            a.add("option.venlafaxine.hypertension", conditions=_names(htn))

    if cls == "tca":
        _assess_tca(a, ctx)
        inhibitors = _other_meds(ctx, ("cyp2d6_inhibitor",), mono)
        if inhibitors:
            a.add("option.tca.cyp2d6_inhibitor", meds=_names(inhibitors))
    if cls == "opioid":
        lowering = _other_meds(ctx, ("seizure_threshold_lowering",), mono)
        if lowering:
            a.add("option.tramadol.seizure_threshold", meds=_names(lowering))
            serotonergic = _other_meds(ctx, ("serotonergic",), mono)
            if serotonergic:
                # Bupropion with a serotonergic drug (Auvelity is both): seizure threshold,
                # CYP2D6 and serotonin syndrome together -> avoid (issue 14 second review C4).
                a.add(
                    "option.tramadol.bupropion_serotonergic",
                    meds=_names(lowering + [m for m in serotonergic if m not in lowering]),
                )
        naltrexone = _other_meds(ctx, ("naltrexone",), mono)
        if naltrexone:
            a.add("option.tramadol.naltrexone", meds=_names(naltrexone))

    if cls == "gabapentinoid":
        cns = _other_meds(ctx, CNS_DEPRESSANT_CLASSES, mono)
        if cns:
            a.add("option.gabapentinoid.cns_depressant", meds=_names(cns))
        lungs = _conditions(ctx, "respiratory_disease")
        if lungs:
            a.add("option.gabapentinoid.respiratory", reasons=_names(lungs))
        misuse = [
            c
            for cls_ in ("substance_misuse", "opioid_use_disorder")
            for c in ctx.ever_conditions(cls_)
        ]
        if misuse:
            a.add("option.gabapentinoid.misuse", conditions=_names(misuse))

    if mono.route == "oral" and _is_pregnant(ctx):
        # Each label's own point (issue 14 review item 7); the generic text where the label
        # says only that human data are limited.
        if cls == "opioid":
            a.add("option.pregnancy.tramadol")
        elif mono.id == "pregabalin":
            a.add("option.pregnancy.pregabalin")
        elif cls == "snri":
            a.add("option.pregnancy.snri")
        else:
            a.add("option.pregnancy")

    if _is_breastfeeding(ctx):
        if mono.id == "pregabalin":
            a.add("option.breastfeeding.pregabalin")
        elif cls == "opioid":
            a.add("option.breastfeeding.tramadol")
        elif mono.route == "oral":
            a.add("option.breastfeeding.weigh")

    if cls in ("snri", "tca"):
        bipolar = _conditions(ctx, "bipolar")
        if bipolar:
            a.add("option.antidepressant.bipolar", conditions=_names(bipolar))
    if cls == "snri":
        glaucoma = _conditions(ctx, "angle_closure_glaucoma")
        if glaucoma:
            a.add("option.snri.glaucoma", conditions=_names(glaucoma))
    age = ctx.age
    falls = list(dict.fromkeys(ctx.ever_conditions("falls")))
    if cls in FALLS_CLASSES and falls and age is not None and age >= 65:
        # Opioids: the criterion says avoid except for severe acute pain (no "unless safer
        # alternatives" clause), so tramadol is avoided (issue 14 second review C8).
        rule = "option.falls.beers_opioid" if cls == "opioid" else "option.falls.beers"
        a.add(rule, age=age, conditions=_names(falls), kind=FALLS_CLASSES[cls])
    cyp2d6 = _phenotype(ctx, "CYP2D6")
    if cls == "opioid" and cyp2d6 == "poor":
        a.add("option.cpic.tramadol_poor")
    elif cls == "opioid" and cyp2d6 == "ultrarapid":
        a.add("option.cpic.tramadol_ultrarapid")
    if mono.id == "venlafaxine" and cyp2d6 == "poor":
        a.add("option.cpic.venlafaxine_poor")

    # Comorbidities that favour a choice.
    if cls == "snri":
        depression = _conditions(ctx, "depression")
        if depression:
            a.add("option.favour.depression", conditions=_names(depression))
            a.favours.append(_names(depression))
        anxiety = _conditions(ctx, "anxiety")
        if anxiety:
            a.add("option.favour.anxiety", conditions=_names(anxiety))
            a.favours.append(_names(anxiety))
    if cls == "tca":
        insomnia = _conditions(ctx, "insomnia")
        if insomnia:
            a.add("option.favour.insomnia", conditions=_names(insomnia))
            a.favours.append(_names(insomnia))


def _renal_dependent(mono: Monograph) -> bool:
    """Does the dose or choice of this drug depend on kidney function (its label)?"""
    return (
        bool(mono.renal_bands)
        or mono.id in ("duloxetine", "venlafaxine")
        or any(limit.when == "crcl_below" for limit in mono.dose_limits)
    )


def _assess_dose_limits(a: _Assessment, ctx: ClinicalContext, renal: RenalFunction | None) -> None:
    """The label's lower daily maxima for groups of patients (tramadol: CrCl < 30, over 75,
    cirrhosis): the lowest that applies caps the maximum and the check on a current dose."""
    for limit in a.mono.dose_limits:
        why: str | None = None
        threshold = limit.threshold or 0
        if limit.when == "crcl_below" and renal is not None and renal.crcl_ml_min < threshold:
            why = f"Creatinine clearance {renal.shown} mL/min ({renal.basis})"
        elif limit.when == "age_over" and ctx.age is not None and ctx.age > threshold:
            why = f"Age {ctx.age}"
        elif limit.when == "condition":
            found = _conditions(ctx, *limit.classes)
            if found:
                why = _names(found)
        if why is None:
            continue
        cap = limit.max_daily.mg_value
        a.limit_mg = cap if a.limit_mg is None else min(a.limit_mg, cap)
        a.reduced_for.append(f"{why[0].lower()}{why[1:]}")
        a.add(
            "option.dose_limit",
            why=why,
            group=limit.group,
            limit=format_decimal(cap),
            frequency=limit.frequency,
        )


def _assess_age(a: _Assessment, ctx: ClinicalContext) -> None:
    """Under 18 nothing is an adult start; tramadol is avoided; antidepressants carry the
    boxed warning up to 24."""
    age = ctx.age
    if age is None:
        # Every option: the doses and neuropathic-pain indications are adult ones, and under
        # 18 tramadol is avoided (issue 14 review item 10).
        a.add("option.age.unknown")
        return
    if age < ADULT_AGE:
        a.no_schedule = True
        a.add("option.age.under18", age=age)
        if a.mono.drug_class == "opioid":
            a.add("option.tramadol.under18", age=age)
    if age <= ANTIDEPRESSANT_YOUNG_MAX_AGE and a.mono.drug_class in ("snri", "tca"):
        a.add("option.antidepressant.young", age=age)


def _assess_duplicates(a: _Assessment, ctx: ClinicalContext) -> None:
    """A second drug of the same class is never added; tramadol is never added to an opioid."""
    cls = a.mono.drug_class
    if cls in SAME_CLASS:
        vocab_class, kind = SAME_CLASS[cls]
        others = _other_meds(ctx, (vocab_class,), a.mono)
        if others:
            a.add("option.same_class", meds=_names(others), kind=kind)
    if cls == "opioid":
        opioids = _other_meds(ctx, ("opioid",), a.mono)
        if opioids:
            a.add("option.tramadol.opioid", meds=_names(opioids))


def _assess_current(
    a: _Assessment, ctx: ClinicalContext, renal: RenalFunction | None, cap: Decimal | None
) -> Decimal | None:
    """A drug already taken: check the recorded dose against this patient's maximum."""
    dose = total_daily(a.current)
    if a.has("contraindication"):
        # "Continue" is no choice next to a "must not be used" reason.
        a.add("option.current.taking_conflict", meds=_names(a.current))
    else:
        a.add("option.current.taking", meds=_names(a.current))
    own_label = [m for m in a.current if _OWN_LABEL_GABAPENTIN.search(m.name)]
    if a.mono.id == "gabapentin" and own_label:
        # Gralise (once-daily) and Horizant (gabapentin enacarbil) are not interchangeable with
        # gabapentin: its 3600 mg maximum and kidney bands are not applied to them.
        a.add("option.gabapentin.own_label_product", meds=_names(own_label))
        gralise = [m for m in own_label if "gralise" in m.name.lower()]
        if gralise and renal is not None and renal.crcl_ml_min < 30:
            # Gralise label: not to be given below CrCl 30 or on haemodialysis.
            a.add("option.gabapentin.gralise_renal", meds=_names(gralise), crcl=renal.shown)
        return dose.daily_mg
    at_least = dose.at_least_mg
    shown = (
        format_decimal(dose.daily_mg)
        if dose.daily_mg is not None
        else f"at least {format_decimal(at_least)}"
        if at_least is not None
        else "?"
    )
    mono_max = a.mono.max_mg
    if at_least is not None and cap is not None and at_least > cap:
        if a.band is not None and renal is not None and at_least > a.band.daily_max.mg_value:
            a.add(
                "option.current.above_renal_max",
                daily=shown,
                limit=format_decimal(a.band.daily_max.mg_value),
                crcl=renal.shown,
                basis=renal.basis,
                band=a.band.label,
                frequency=a.band.frequency,
            )
        elif (a.scale < 1 or a.limit_mg is not None) and (mono_max is None or at_least <= mono_max):
            a.add(
                "option.current.above_reduced_max",
                daily=shown,
                limit=format_decimal(cap),
                why=", ".join(a.reduced_for),
            )
        else:
            a.add("option.current.above_max", daily=shown, limit=format_decimal(cap))
    elif dose.daily_mg is None and cap is not None:
        a.add(
            "option.current.dose_unknown",
            meds=_names(a.current),
            limit=format_decimal(cap),
        )
    return dose.daily_mg


#: Gabapentin products with their own label, not interchangeable with gabapentin (the once-daily
#: tablet's label: "not substitutable with other gabapentin products"; Horizant is the prodrug
#: gabapentin enacarbil with its own indications).
_OWN_LABEL_GABAPENTIN = re.compile(r"\b(gralise|horizant|enacarbil)\b", re.IGNORECASE)


def _advice(a: _Assessment, daily: Decimal | None) -> Advice:
    rules = {r.rule for r in a.reasons}
    if any(r.startswith("option.current.above") for r in rules):
        return "reduce"
    if a.has("contraindication"):
        return "switch"
    if daily is None or any(
        r.severity == "warning" and r.rule != "option.second_line" for r in a.reasons
    ):
        return "review"
    usual = a.mono.usual_target
    if (
        daily is not None
        and a.band is None
        and usual is not None
        and daily < usual.min.mg_value * a.scale
    ):
        return "optimise"
    return "continue"


def _outweigh_favours(a: _Assessment, favours: list[str]) -> None:
    """An avoided option keeps no favourable reason that could read as a recommendation."""
    if not favours or not a.has("contraindication"):
        return
    a.reasons = [r for r in a.reasons if not r.rule.startswith("option.favour.")]
    a.add("option.favour.outweighed", conditions=", ".join(dict.fromkeys(favours)))


def _assess_tca(a: _Assessment, ctx: ClinicalContext) -> None:
    mi = _conditions(ctx, "recent_mi")
    if mi:
        a.add("option.tca.recent_mi", conditions=_names(mi))
    heart = _conditions(ctx, "cardiac_conduction", "heart_disease")
    if heart:
        a.add("option.tca.conduction", conditions=_names(heart))
    qt = _other_meds(ctx, ("qt_prolonging",), a.mono)
    if qt:
        a.add("option.tca.qt_drugs", meds=_names(qt))
    glaucoma = _conditions(ctx, "angle_closure_glaucoma")
    if glaucoma:
        a.add("option.tca.glaucoma", conditions=_names(glaucoma))
    liver = _conditions(ctx, "hepatic_failure", "hepatic_impairment")
    if liver:
        a.add("option.tca.hepatic", conditions=_names(liver))
    retention = _conditions(ctx, "urinary_retention")
    if retention:
        a.add("option.tca.urinary_retention", conditions=_names(retention))
    age = ctx.age
    if age is not None and age >= 65:
        a.add("option.tca.age65", age=age)

    cyp2d6 = _phenotype(ctx, "CYP2D6")
    if cyp2d6 == "poor":
        a.add("option.cpic.cyp2d6_poor")
    elif cyp2d6 == "ultrarapid":
        a.add("option.cpic.cyp2d6_ultrarapid")
    elif cyp2d6 == "intermediate":
        a.first_factor = Decimal("0.75")
        a.add("option.cpic.cyp2d6_intermediate")
    if a.mono.id == "amitriptyline":
        cyp2c19 = _phenotype(ctx, "CYP2C19")
        if cyp2c19 == "poor":
            a.add("option.cpic.cyp2c19_poor")
        elif cyp2c19 in ("ultrarapid", "rapid"):
            a.add("option.cpic.cyp2c19_rapid", phenotype=f"{cyp2c19} metaboliser")


def _doses_per_day(t: Titration, dose: Decimal) -> int:
    if t.unit_dose is None:
        return t.doses_per_day
    return max(1, min(t.doses_per_day, math.ceil(dose / t.unit_dose.mg_value)))


def _schedule(a: _Assessment, start: date, cap: Decimal | None) -> tuple[ScheduleStep, ...]:
    t = a.mono.titration
    if t is None or a.suitability in ("avoid", "current") or a.no_schedule:
        return ()
    if a.band is not None:
        # Reduced renal band: start at the band's lowest daily dose; titrate within the band
        # under review (the label gives the range, not a step).
        return (
            ScheduleStep(
                start_date=start,
                end_date=None,
                dose_mg=a.band.daily_min.mg_value * a.scale,
                doses_per_day=a.band.doses_per_day,
                time_of_day=t.time_of_day,
            ),
        )
    target = t.target_dose.mg_value * a.scale
    if cap is not None:
        target = min(target, cap)
    doses = [min(t.start_dose.mg_value * a.scale, target)]
    if t.step_dose is not None:
        step = t.step_dose.mg_value * a.scale
        while doses[-1] < target:
            doses.append(min(doses[-1] + step, target))
    doses[0] = doses[0] * a.first_factor
    days = t.step_days or 0
    steps: list[ScheduleStep] = []
    for i, dose in enumerate(doses):
        begin = start + timedelta(days=i * days)
        last = i == len(doses) - 1
        steps.append(
            ScheduleStep(
                start_date=begin,
                end_date=None if last else begin + timedelta(days=days - 1),
                dose_mg=dose.normalize() + Decimal(0),
                doses_per_day=_doses_per_day(t, dose),
                time_of_day=t.time_of_day,
            )
        )
    return tuple(steps)


def assess_option(
    mono: Monograph,
    ctx: ClinicalContext,
    evidence: Evidence,
    *,
    start: date,
    renal: RenalFunction | None = None,
) -> Option:
    """One drug for one patient."""
    a = _Assessment(evidence=evidence, mono=mono)
    _assess(a, ctx, renal, start)
    cap: Decimal | None = None
    if mono.max_mg is not None:
        cap = mono.max_mg * a.scale
        if a.band is not None:
            cap = min(cap, a.band.daily_max.mg_value * a.scale)
        if a.limit_mg is not None:
            cap = min(cap, a.limit_mg)
    daily = _assess_current(a, ctx, renal, cap) if a.current else None
    _outweigh_favours(a, a.favours)
    return Option(
        drug=mono.id,
        name=mono.name,
        suitability=a.suitability,
        combinable_with_ldn=mono.combinable_with_ldn,
        reasons=tuple(a.reasons),
        schedule=_schedule(a, start, cap),
        max_daily_dose_mg=None if cap is None else cap.normalize() + Decimal(0),
        nnt=mono.nnt.value if mono.nnt else None,
        taking=tuple(dict.fromkeys(_med_label(m) for m in a.current)),
        current_daily_mg=daily,
        advice=_advice(a, daily) if a.current else None,
    )


def _med_label(med: MedicationUse) -> str:
    return med.name + (f" ({med.dose_text})" if med.dose_text else "")


def patient_renal_function(ctx: ClinicalContext) -> RenalFunction | None:
    """Kidney function from the labs (Cockcroft–Gault, eGFR, CKD-EPI 2021); with no lab, from
    a dialysis or CKD stage 4-5 diagnosis (the matching lowest band, said so in the basis)."""
    return reconcile_with_diagnosis(
        estimate_renal_function(ctx.patient, ctx.as_of),
        {cls: [c.display for c in ctx.active_conditions(cls)] for cls, _ in DIAGNOSIS_BOUNDS},
        ctx.as_of,
    )


def rank_options(ctx: ClinicalContext, evidence: Evidence, *, start: date) -> tuple[Option, ...]:
    """Every monograph assessed for this patient: preferred first, then suitable, caution,
    avoid; within a level by NNT (lower first; none last)."""
    renal = patient_renal_function(ctx)
    options = [
        assess_option(mono, ctx, evidence, start=start, renal=renal)
        for mono in evidence.monographs.values()
    ]
    return tuple(
        sorted(
            options,
            key=lambda o: (
                SUITABILITY_ORDER[o.suitability],
                o.nnt if o.nnt is not None else Decimal("Infinity"),
                o.drug,
            ),
        )
    )
