"""Order decisions: which draft medication orders conflict with what, and the daily dose an
order adds up to. Pure: the CDS Hooks adapter reads the FHIR drafts into :class:`DraftOrder`
(and their timing into :class:`OrderTiming`), and turns :class:`OrderDecisions` into words and
cards.

- **Naltrexone ordered while contraindicated**: screened on the patient with every opioid drafted
  alongside added (unsigned, but on its way); any contraindication blocks the order.
- **Opioid ordered for a patient on naltrexone** (active, or a naltrexone draft alongside):
  the basis is rule ``ldn.opioid.active`` (the findings naming this opioid, else all of them).
- **Gabapentinoid above the renal band**: the ordered daily dose against the daily maximum of the
  band the patient's kidney function falls in (:func:`check_renal_dose`), with the largest dose
  whole units of the ordered product give within the band (:func:`dose_in_whole_units`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ldncare.core.context import ClassifiedMedication, ClinicalContext
from ldncare.core.findings import Finding
from ldncare.core.patient import MedicationUse, Patient
from ldncare.core.quantity import Dose, find_dose
from ldncare.core.renal import RenalDoseExcess, check_renal_dose
from ldncare.core.screening import screen
from ldncare.core.unit_dose import UnitDose, dose_in_whole_units
from ldncare.evidence.models import Evidence
from ldncare.evidence.monographs import Monograph

#: The medication classes an order decision is about. An order of nothing in them -- most
#: orders an EHR sends -- gets no decision, whatever the patient's record says.
ORDER_CLASSES = frozenset({"naltrexone", "opioid", "gabapentinoid"})

#: Doses a day per unit of a timing period (FHIR R4 UnitsOfTime).
_PER_DAY = {"d": Decimal(1), "h": Decimal(24), "wk": Decimal(1) / 7, "min": Decimal(1440)}


@dataclass(frozen=True)
class OrderTiming:
    """How often an order's dose is given, as FHIR R4 Timing states it.

    ``frequency`` per ``period`` ``period_unit`` (``frequencyMax`` when given); else
    ``times_a_day`` from the timing code (BID, TID...) or the count of ``when``/``timeOfDay``
    events; ``None`` there when the code is one ldncare cannot count.
    """

    frequency: Decimal | None = None
    period: Decimal | None = None
    period_unit: str = "d"
    times_a_day: Decimal | None = Decimal(1)


def daily_mg(dose: Dose, timing: OrderTiming) -> Decimal | None:
    """Milligrams a day of ``dose`` given as ``timing`` says; None when it cannot be told."""
    # A period without a frequency is once per period (FHIR R4 Timing: frequency defaults
    # to 1): every 8 h is 3 doses a day, every 2 days half a dose a day.
    if timing.frequency is not None or timing.period is not None:
        per_day = _PER_DAY.get(timing.period_unit)
        period = timing.period if timing.period is not None else Decimal(1)
        if per_day is None or period <= 0:
            return None
        frequency = timing.frequency if timing.frequency is not None else Decimal(1)
        return (dose.mg_value * frequency * per_day / period).normalize()
    if timing.times_a_day is None:
        return None
    return (dose.mg_value * timing.times_a_day).normalize()


@dataclass(frozen=True)
class DraftOrder:
    """A draft medication order, read and classified: about to start, so screened as active."""

    med: MedicationUse
    classes: frozenset[str]
    #: The order's daily dose in mg, when its dosage and timing give one.
    daily_mg: Decimal | None = None
    #: The adapter's handle on the order (``MedicationRequest/id``), for its suggestions.
    reference: str | None = None


@dataclass(frozen=True)
class NaltrexoneBlocked:
    order: DraftOrder
    #: The contraindications found with the drafted opioids added.
    findings: tuple[Finding, ...]
    #: Active opioids (record and drafts) when a finding is an opioid rule, else empty.
    opioids: tuple[MedicationUse, ...]


@dataclass(frozen=True)
class OpioidOnNaltrexone:
    order: DraftOrder
    basis: tuple[Finding, ...]
    active_naltrexone: tuple[MedicationUse, ...]
    naltrexone_alongside: tuple[MedicationUse, ...]


@dataclass(frozen=True)
class RenalDoseTooHigh:
    order: DraftOrder
    monograph: Monograph
    excess: RenalDoseExcess
    #: The ordered product's strength, when its name states one.
    strength: Dose | None
    #: The largest dose whole units of that product give within the band, if any.
    unit_dose: UnitDose | None


@dataclass(frozen=True)
class OrderDecisions:
    naltrexone_blocked: tuple[NaltrexoneBlocked, ...] = ()
    opioid_on_naltrexone: tuple[OpioidOnNaltrexone, ...] = ()
    renal: tuple[RenalDoseTooHigh, ...] = ()


def needs_check(checked: Sequence[DraftOrder]) -> bool:
    """Whether any checked draft is of a class an order decision is about."""
    return any(d.classes & ORDER_CLASSES for d in checked)


def decide_orders(
    ctx: ClinicalContext,
    patient: Patient,
    checked: Sequence[DraftOrder],
    drafts: Sequence[DraftOrder],
    evidence: Evidence,
    ingredients: Mapping[int, Sequence[str]],
    as_of: date,
) -> OrderDecisions:
    """The decisions on the ``checked`` drafts (``drafts``: every draft, checked or not);
    ``ingredients``: each gabapentinoid draft's ingredients, by ``id()`` of the draft."""
    checked_ids = {id(d) for d in checked}
    ordered_naltrexone = [d for d in checked if "naltrexone" in d.classes]
    ordered_opioids = [d for d in checked if "opioid" in d.classes]
    drafted_opioids = [d for d in drafts if "opioid" in d.classes]
    naltrexone_alongside = tuple(
        d.med for d in drafts if "naltrexone" in d.classes and id(d) not in checked_ids
    )
    active_naltrexone = ctx.active_meds("naltrexone")
    on_naltrexone = (*active_naltrexone, *naltrexone_alongside)
    blocked: list[NaltrexoneBlocked] = []
    opioid_cards: list[OpioidOnNaltrexone] = []
    if ordered_naltrexone or (ordered_opioids and on_naltrexone):
        # The patient with the drafted opioids added, screened once for both checks.
        added = [ClassifiedMedication(d.med, d.classes, d.med.is_active(as_of))
                 for d in drafted_opioids]  # fmt: skip
        whatif = ctx.with_medications(added)
        found = screen(whatif, evidence)
        stops = tuple(f for f in found if f.severity == "contraindication")
        if stops:
            opioid_rule = any(f.rule.startswith("ldn.opioid.") for f in stops)
            opioids = whatif.active_meds("opioid") if opioid_rule else ()
            blocked = [NaltrexoneBlocked(d, stops, opioids) for d in ordered_naltrexone]
        if on_naltrexone:
            active_rule = [f for f in found if f.rule == "ldn.opioid.active"]
            for d in ordered_opioids:
                basis = [f for f in active_rule if d.med.name in f.message] or active_rule
                opioid_cards.append(
                    OpioidOnNaltrexone(d, tuple(basis), active_naltrexone, naltrexone_alongside)
                )
    renal: list[RenalDoseTooHigh] = []
    for d in checked:
        if "gabapentinoid" not in d.classes or d.daily_mg is None:
            continue
        names = ingredients.get(id(d), ())
        mono = next((evidence.monographs[i] for i in names if i in evidence.monographs), None)
        if mono is None or not mono.renal_bands:
            continue
        excess = check_renal_dose(mono, patient, as_of, d.daily_mg)
        if excess is None:
            continue
        band = excess.band
        strength = find_dose(d.med.name)
        unit = (
            dose_in_whole_units(
                strength.mg_value,
                band.doses_per_day,
                band.daily_min.mg_value,
                band.daily_max.mg_value,
            )
            if strength is not None
            else None
        )
        renal.append(RenalDoseTooHigh(d, mono, excess, strength, unit))
    return OrderDecisions(tuple(blocked), tuple(opioid_cards), tuple(renal))
