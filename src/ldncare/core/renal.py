"""Kidney function for dosing: creatinine clearance by Cockcroft–Gault, or eGFR as a stand-in.

Gabapentin, pregabalin and duloxetine are dosed by creatinine clearance (CrCl) in their labels.
Cockcroft–Gault: CrCl = (140 − age) × weight (kg) / (72 × serum creatinine in mg/dL), × 0.85
for women (facts.md). Creatinine reported in µmol/L is converted by dividing by 88.4. When
the file has no creatinine (or no age/weight to use it) but has an eGFR, the eGFR is used as
the estimate and the basis says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ldncare.core.patient import LabResult, Patient
from ldncare.errors import InvalidInput
from ldncare.evidence.monographs import Monograph, RenalBand

#: µmol/L per mg/dL of creatinine.
UMOL_PER_MG_DL = 88.4
_MG_DL_UNITS = {"mg/dl", "mg/100ml", "mg%"}
_UMOL_UNITS = {"umol/l", "µmol/l", "μmol/l", "micromol/l", "mmol/m3"}

Method = str  # "cockcroft_gault" | "egfr"


@dataclass(frozen=True)
class RenalFunction:
    """An estimate of kidney function in mL/min with the basis a clinician can check."""

    crcl_ml_min: float
    method: Method
    basis: str

    @property
    def rounded(self) -> int:
        return round(self.crcl_ml_min)


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


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _when(lab: LabResult) -> str:
    return f" on {lab.date.isoformat()}" if lab.date else ""


def estimate_renal_function(patient: Patient, as_of: date) -> RenalFunction | None:
    """Cockcroft–Gault from the latest creatinine, else the latest eGFR, else ``None``."""
    age = patient.age_on(as_of)
    creat = patient.latest_lab("creatinine")
    if (
        creat is not None
        and creat.value is not None
        and age is not None
        and patient.weight_kg is not None
    ):
        try:
            mg_dl = creatinine_mg_dl(creat.value, creat.unit)
        except InvalidInput:
            mg_dl = None
        if mg_dl is not None:
            crcl = cockcroft_gault(
                age=age, weight_kg=patient.weight_kg, sex=patient.sex, creatinine_mg_per_dl=mg_dl
            )
            shown = f"{_fmt(creat.value)} {creat.unit}"
            if creat.unit and creat.unit.strip().lower() not in _MG_DL_UNITS:
                shown += f" = {_fmt(mg_dl)} mg/dL"
            sex_note = "" if patient.sex in ("male", "female") else ", sex not recorded: ×0.85"
            return RenalFunction(
                crcl_ml_min=crcl,
                method="cockcroft_gault",
                basis=(
                    f"Cockcroft–Gault from creatinine {shown}{_when(creat)}, age {age}, "
                    f"weight {_fmt(patient.weight_kg)} kg{sex_note}"
                ),
            )
    egfr = patient.latest_lab("egfr")
    if egfr is not None and egfr.value is not None and egfr.value >= 0:
        return RenalFunction(
            crcl_ml_min=float(egfr.value),
            method="egfr",
            basis=f"eGFR {_fmt(egfr.value)}{_when(egfr)} used as estimate",
        )
    return None


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
