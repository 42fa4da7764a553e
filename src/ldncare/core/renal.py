"""Kidney function for dosing: creatinine clearance by Cockcroft–Gault, or eGFR as a stand-in.

Gabapentin, pregabalin and duloxetine are dosed by creatinine clearance (CrCl) in their labels.
Cockcroft–Gault: CrCl = (140 − age) × weight (kg) / (72 × serum creatinine in mg/dL), × 0.85
for women (facts.md). Creatinine reported in µmol/L is converted by dividing by 88.4. When
the file has no creatinine (or no age/weight to use it) but has an eGFR, the eGFR is used as
the estimate and the basis says so. A creatinine with an age but no weight gives an eGFR by the
race-free CKD-EPI 2021 creatinine equation (Inker 2021; kidney.org): 142 × min(Scr/κ, 1)^α ×
max(Scr/κ, 1)^−1.200 × 0.9938^age × 1.012 if female, κ 0.7 (female) or 0.9 (male), α −0.241
(female) or −0.302 (male); it needs no weight. Sex not recorded: the lower of the two results.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from ldncare.core.patient import LabResult, Patient
from ldncare.errors import InvalidInput
from ldncare.evidence.monographs import Monograph, RenalBand

#: µmol/L per mg/dL of creatinine.
UMOL_PER_MG_DL = 88.4
_MG_DL_UNITS = {"mg/dl", "mg/100ml", "mg%"}
_UMOL_UNITS = {"umol/l", "µmol/l", "μmol/l", "micromol/l", "mmol/m3"}

Method = str  # "cockcroft_gault" | "egfr" | "ckd_epi_2021" | "diagnosis"


@dataclass(frozen=True)
class RenalFunction:
    """An estimate of kidney function in mL/min with the basis a clinician can check."""

    crcl_ml_min: float
    method: Method
    basis: str

    #: For ``method == "diagnosis"``: the kidney function is known only to be below this
    #: (CKD stage 4: 30 mL/min; stage 5, ESRD or dialysis: 15 mL/min).
    below: int | None = None

    #: The date of the laboratory result the estimate rests on (None: undated or a diagnosis).
    measured_on: date | None = None

    #: For a diagnosis band chosen over a conflicting laboratory result: that result's basis.
    overrides_lab: str | None = None

    #: The laboratory result is older than :data:`STALE_AFTER_DAYS` on the planning date.
    stale: bool = False

    @property
    def rounded(self) -> int:
        return round(self.crcl_ml_min)

    @property
    def shown(self) -> str:
        """The value for a message: "23", or "below 15" when taken from a diagnosis."""
        return f"below {self.below}" if self.below is not None else str(self.rounded)


def creatinine_mg_dl(value: float, unit: str | None) -> float:
    """Serum creatinine in mg/dL from a value and its unit (µmol/L divided by 88.4)."""
    if value <= 0:
        raise InvalidInput(f"serum creatinine {value} must be above zero")
    key = (unit or "").strip().lower().replace(" ", "")
    if key in _MG_DL_UNITS:
        return value
    if key in _UMOL_UNITS:
        return value / UMOL_PER_MG_DL
    raise InvalidInput(f"creatinine unit {unit!r} is not understood; accepted: mg/dL or µmol/L")


def cockcroft_gault(*, age: int, weight_kg: float, sex: str, creatinine_mg_per_dl: float) -> float:
    """Creatinine clearance in mL/min. ``sex`` other than "male" uses the female factor 0.85
    (the lower, safer estimate when sex is not recorded)."""
    if age <= 0 or weight_kg <= 0 or creatinine_mg_per_dl <= 0:
        raise InvalidInput("Cockcroft–Gault needs a positive age, weight and creatinine")
    crcl = (140 - age) * weight_kg / (72 * creatinine_mg_per_dl)
    if sex != "male":
        crcl *= 0.85
    return max(crcl, 0.0)


def ckd_epi_2021(*, age: int, sex: str, creatinine_mg_per_dl: float) -> float:
    """eGFR in mL/min/1.73 m² by the race-free CKD-EPI 2021 creatinine equation. ``sex``
    other than "male"/"female" gives the lower of the two results."""
    if age <= 0 or creatinine_mg_per_dl <= 0:
        raise InvalidInput("CKD-EPI 2021 needs a positive age and creatinine")
    if sex not in ("male", "female"):
        return min(
            ckd_epi_2021(age=age, sex=s, creatinine_mg_per_dl=creatinine_mg_per_dl)
            for s in ("male", "female")
        )
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = creatinine_mg_per_dl / kappa
    egfr = float(142 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age)
    return egfr * 1.012 if sex == "female" else egfr


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _when(lab: LabResult) -> str:
    return f" on {lab.date.isoformat()}" if lab.date else ""


def estimate_renal_function(patient: Patient, as_of: date) -> RenalFunction | None:
    """Cockcroft–Gault from the latest creatinine; else the latest eGFR; else the CKD-EPI 2021
    eGFR from a creatinine without a weight (a reported eGFR at least as recent wins);
    else ``None``."""
    age = patient.age_on(as_of)
    creat = patient.latest_lab("creatinine")
    mg_dl: float | None = None
    if creat is not None and creat.value is not None:
        try:
            mg_dl = creatinine_mg_dl(creat.value, creat.unit)
        except InvalidInput:
            mg_dl = None
    if creat is not None and mg_dl is not None:
        shown = f"{_fmt(creat.value or 0)} {creat.unit}"
        if creat.unit and creat.unit.strip().lower() not in _MG_DL_UNITS:
            shown += f" = {_fmt(mg_dl)} mg/dL"
        sex_note = "" if patient.sex in ("male", "female") else ", sex not recorded: ×0.85"
        if age is not None and patient.weight_kg is not None:
            crcl = cockcroft_gault(
                age=age, weight_kg=patient.weight_kg, sex=patient.sex, creatinine_mg_per_dl=mg_dl
            )
            return RenalFunction(
                crcl_ml_min=crcl,
                method="cockcroft_gault",
                basis=(
                    f"Cockcroft–Gault from creatinine {shown}{_when(creat)}, age {age}, "
                    f"weight {_fmt(patient.weight_kg)} kg{sex_note}"
                ),
                measured_on=creat.date,
            )
    egfr = patient.latest_lab("egfr")
    reported = egfr is not None and egfr.value is not None and egfr.value >= 0
    newer_creat = (
        creat is not None
        and creat.date is not None
        and egfr is not None
        and egfr.date is not None
        and creat.date > egfr.date
    )
    if reported and not newer_creat and egfr is not None and egfr.value is not None:
        return RenalFunction(
            crcl_ml_min=float(egfr.value),
            method="egfr",
            basis=f"eGFR {_fmt(egfr.value)}{_when(egfr)} used as estimate",
            measured_on=egfr.date,
        )
    if creat is not None and mg_dl is not None and age is not None and age > 0:
        value = ckd_epi_2021(age=age, sex=patient.sex, creatinine_mg_per_dl=mg_dl)
        sex_note = (
            "" if patient.sex in ("male", "female") else ", sex not recorded: the lower result"
        )
        return RenalFunction(
            crcl_ml_min=value,
            method="ckd_epi_2021",
            basis=(
                f"eGFR {round(value)} mL/min/1.73 m² by CKD-EPI 2021 from creatinine "
                f"{_fmt(creat.value or 0)} {creat.unit}{_when(creat)}, age {age}{sex_note}; "
                "no weight on file for Cockcroft–Gault, eGFR used as estimate"
            ),
            measured_on=creat.date,
        )
    if reported and egfr is not None and egfr.value is not None:
        return RenalFunction(
            crcl_ml_min=float(egfr.value),
            method="egfr",
            basis=f"eGFR {_fmt(egfr.value)}{_when(egfr)} used as estimate",
            measured_on=egfr.date,
        )
    return None


#: A kidney-failure diagnosis with no creatinine or eGFR: the class and the bound it sets.
DIAGNOSIS_BOUNDS: tuple[tuple[str, int], ...] = (
    ("dialysis", 15),
    ("ckd_stage_5", 15),
    ("ckd_stage_4", 30),
)


def renal_from_diagnosis(names_by_class: dict[str, list[str]]) -> RenalFunction | None:
    """With no creatinine or eGFR on file, a dialysis or CKD stage 4-5 diagnosis places the
    patient in the matching lowest band (KDIGO stages: G5 below 15, G4 15-29 mL/min/1.73 m²).
    ``names_by_class`` maps the classes of :data:`DIAGNOSIS_BOUNDS` to the recorded
    conditions' names."""
    for cls, bound in DIAGNOSIS_BOUNDS:
        names = names_by_class.get(cls) or []
        if names:
            return RenalFunction(
                crcl_ml_min=bound - 1,
                method="diagnosis",
                basis=(
                    f"no creatinine or eGFR on file; taken from the diagnosis "
                    f"{', '.join(dict.fromkeys(names))}"
                ),
                below=bound,
            )
    return None


#: A kidney result older than this on the planning date is flagged as stale. 12 months is
#: ldncare's own stated choice (not taken from a guideline: the KDIGO 2012 monitoring
#: interval could not be confirmed from a source here); messages say so.
STALE_AFTER_DAYS = 365


def is_stale(measured_on: date | None, as_of: date) -> bool:
    """Is a result dated ``measured_on`` older than :data:`STALE_AFTER_DAYS` on ``as_of``?"""
    return measured_on is not None and (as_of - measured_on).days > STALE_AFTER_DAYS


def reconcile_with_diagnosis(
    lab: RenalFunction | None, names_by_class: dict[str, list[str]], as_of: date
) -> RenalFunction | None:
    """Kidney function for dosing from a laboratory estimate and the problem list.

    No laboratory estimate: the diagnosis band (:func:`renal_from_diagnosis`). A laboratory
    estimate at or above the bound a CKD stage 4-5, ESRD or dialysis diagnosis sets conflicts
    with it (an old eGFR of 88 next to "CKD stage 4"): the diagnosis band wins, the basis says
    why, and ``overrides_lab`` keeps the result it set aside. Otherwise the laboratory estimate,
    marked ``stale`` when it is older than :data:`STALE_AFTER_DAYS`.
    """
    diagnosis = renal_from_diagnosis(names_by_class)
    if lab is None:
        return diagnosis
    stale = is_stale(lab.measured_on, as_of)
    if diagnosis is not None and diagnosis.below is not None and lab.crcl_ml_min >= diagnosis.below:
        names = next(
            ", ".join(dict.fromkeys(names_by_class[cls]))
            for cls, _ in DIAGNOSIS_BOUNDS
            if names_by_class.get(cls)
        )
        age_note = " (older than 12 months)" if stale else ""
        return replace(
            diagnosis,
            basis=(
                f"the diagnosis {names} (below {diagnosis.below} mL/min) conflicts with "
                f"{lab.basis}{age_note}; the diagnosis band is used until kidney function is "
                "measured again"
            ),
            measured_on=lab.measured_on,
            overrides_lab=lab.basis,
            stale=stale,
        )
    return replace(lab, stale=stale) if stale else lab


@dataclass(frozen=True)
class RenalDoseExcess:
    """An ordered daily dose above the maximum of the patient's renal band (label bands)."""

    renal: RenalFunction
    band: RenalBand
    ordered_daily_mg: Decimal

    @property
    def suggested_per_dose_mg(self) -> Decimal:
        return self.band.daily_max.mg_value / self.band.doses_per_day


def check_renal_dose(
    monograph: Monograph, patient: Patient, as_of: date, ordered_daily_mg: Decimal
) -> RenalDoseExcess | None:
    """Is ``ordered_daily_mg`` above the band this patient's kidney function falls in?

    ``None`` when the drug has no renal bands, kidney function is unknown, or the dose fits.
    """
    if not monograph.renal_bands:
        return None
    renal = estimate_renal_function(patient, as_of)
    if renal is None:
        return None
    band = monograph.renal_band(renal.crcl_ml_min)
    if band is None or ordered_daily_mg <= band.daily_max.mg_value:
        return None
    return RenalDoseExcess(renal, band, ordered_daily_mg)
