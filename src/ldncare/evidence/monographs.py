"""Drug monographs: one YAML file per drug in ``evidence/data/drugs``, every figure cited.

A monograph holds what a prescriber needs to choose and dose an alternative or add-on to LDN:
start dose, titration step and interval, usual target, maximum, renal bands by creatinine
clearance, hepatic rule, contraindications, cautions, interactions, side effects and NNT/NNH.
Doses are written with units ("300 mg") and parsed with :func:`parse_dose`; a bare number is an
error. Each fact carries the ids of the sources it comes from, and the loader refuses ids that
are not in the bibliography.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from decimal import Decimal
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ldncare.core.quantity import Dose, parse_dose
from ldncare.errors import EvidenceError, LdncareError

if TYPE_CHECKING:  # models.py imports this module; keep the import one-way at run time
    from ldncare.evidence.models import Source

DrugClass = Literal["gabapentinoid", "snri", "tca", "opioid", "topical"]
Line = Literal["first", "second"]
Route = Literal["oral", "topical"]
TimeOfDay = Literal["bedtime", "morning", "divided", "any"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_dose(value: Any) -> Dose:
    return value if isinstance(value, Dose) else parse_dose(value)


def _as_opt_dose(value: Any) -> Dose | None:
    return None if value is None else _as_dose(value)


class CitedText(_Strict):
    """A statement in our own words with its sources."""

    text: str = Field(min_length=3)
    citations: tuple[str, ...] = Field(min_length=1)


class CitedDose(_Strict):
    value: Dose
    citations: tuple[str, ...] = Field(min_length=1)

    _dose = field_validator("value", mode="before")(_as_dose)

    @property
    def mg(self) -> Decimal:
        return self.value.mg_value


class CitedDoseRange(_Strict):
    min: Dose
    max: Dose
    citations: tuple[str, ...] = Field(min_length=1)

    _dose = field_validator("min", "max", mode="before")(_as_dose)

    @model_validator(mode="after")
    def _ordered(self) -> CitedDoseRange:
        if self.min.mg_value > self.max.mg_value:
            raise ValueError(f"range minimum {self.min} is above its maximum {self.max}")
        return self


class Titration(_Strict):
    """How to start and step up. ``target_dose`` is where the scheduled titration stops."""

    start_dose: Dose
    step_dose: Dose | None = None
    step_days: int | None = Field(default=None, ge=1)
    target_dose: Dose
    doses_per_day: int = Field(ge=1, le=4)
    #: One tablet/capsule per dose while stepping up; the number of doses a day then grows
    #: with the daily total (gabapentin: 300 mg once, twice, then three times a day).
    unit_dose: Dose | None = None
    time_of_day: TimeOfDay = "any"
    citations: tuple[str, ...] = Field(min_length=1)

    _dose = field_validator("start_dose", "step_dose", "target_dose", "unit_dose", mode="before")(
        _as_opt_dose
    )

    @model_validator(mode="after")
    def _consistent(self) -> Titration:
        if (self.step_dose is None) != (self.step_days is None):
            raise ValueError("step_dose and step_days go together")
        if self.start_dose.mg_value > self.target_dose.mg_value:
            raise ValueError("start_dose is above target_dose")
        return self


class RenalBand(_Strict):
    """Daily dose range for creatinine clearance in [min_crcl, max_crcl) mL/min."""

    min_crcl: float = Field(ge=0)
    max_crcl: float | None = None
    daily_min: Dose
    daily_max: Dose
    doses_per_day: int = Field(ge=1, le=4)
    frequency: str
    citations: tuple[str, ...] = Field(min_length=1)

    _dose = field_validator("daily_min", "daily_max", mode="before")(_as_dose)

    def contains(self, crcl: float) -> bool:
        return crcl >= self.min_crcl and (self.max_crcl is None or crcl < self.max_crcl)

    @property
    def label(self) -> str:
        if self.max_crcl is None:
            return f"CrCl ≥ {self.min_crcl:g} mL/min"
        if self.min_crcl == 0:
            return f"CrCl < {self.max_crcl:g} mL/min"
        return f"CrCl {self.min_crcl:g}–{self.max_crcl:g} mL/min"


class DoseLimit(_Strict):
    """A label's lower daily maximum for one group of patients (tramadol: CrCl < 30, over
    75, cirrhosis). ``when`` names the group: ``crcl_below`` (creatinine clearance below
    ``threshold`` mL/min), ``age_over`` (older than ``threshold`` years) or ``condition``
    (an active condition of one of the vocabulary ``classes``)."""

    when: Literal["crcl_below", "age_over", "condition"]
    threshold: float | None = None
    classes: tuple[str, ...] = ()
    max_daily: Dose
    #: How the reduced dose is given, in the label's words ("every 12 hours").
    frequency: str
    #: Who the label means, shown in the message ("creatinine clearance below 30 mL/min").
    group: str
    citations: tuple[str, ...] = Field(min_length=1)

    _dose = field_validator("max_daily", mode="before")(_as_dose)

    @model_validator(mode="after")
    def _complete(self) -> DoseLimit:
        if self.when == "condition" and not self.classes:
            raise ValueError("a condition dose limit needs classes")
        if self.when != "condition" and self.threshold is None:
            raise ValueError(f"a {self.when} dose limit needs a threshold")
        return self


class NumberNeeded(_Strict):
    """NNT (for 50 % pain relief) or NNH (dropouts for adverse events), with its 95 % CI."""

    value: Decimal = Field(gt=0)
    ci_low: Decimal | None = None
    ci_high: Decimal | None = None
    applies_to: str
    citations: tuple[str, ...] = Field(min_length=1)


class Monograph(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    #: Names a recorded medicine is recognised by (generic, brands). Each entry matches when
    #: all of its words appear as whole words in the medicine's name ("lidocaine patch").
    names: tuple[str, ...] = ()
    drug_class: DrugClass
    line: Line
    route: Route
    #: Whether it can be taken together with LDN. Opioids cannot: naltrexone blocks them.
    combinable_with_ldn: bool
    titration: Titration | None = None
    usual_target: CitedDoseRange | None = None
    max_daily_dose: CitedDose | None = None
    #: For topical products the regimen is not a mg dose ("1-3 plasters for up to 12 h").
    regimen: CitedText | None = None
    renal_bands: tuple[RenalBand, ...] = ()
    #: Lower daily maxima the label sets for groups of patients (kidney, age, liver).
    dose_limits: tuple[DoseLimit, ...] = ()
    hepatic: tuple[CitedText, ...] = ()
    contraindications: tuple[CitedText, ...] = ()
    cautions: tuple[CitedText, ...] = ()
    interactions: tuple[CitedText, ...] = ()
    side_effects: tuple[CitedText, ...] = ()
    nnt: NumberNeeded | None = None
    nnh: NumberNeeded | None = None
    combination_note: CitedText | None = None

    @model_validator(mode="after")
    def _limits(self) -> Monograph:
        if self.route == "oral" and self.max_daily_dose is None:
            raise ValueError("an oral drug needs max_daily_dose")
        max_mg = self.max_daily_dose.mg if self.max_daily_dose else None
        if self.titration and max_mg is not None and self.titration.target_dose.mg_value > max_mg:
            raise ValueError("titration target is above max_daily_dose")
        if self.usual_target and max_mg is not None and self.usual_target.max.mg_value > max_mg:
            raise ValueError("usual_target is above max_daily_dose")
        bands = sorted(self.renal_bands, key=lambda b: b.min_crcl)
        for band in bands:
            if max_mg is not None and band.daily_max.mg_value > max_mg:
                raise ValueError(f"renal band {band.label} maximum is above max_daily_dose")
            if band.daily_min.mg_value > band.daily_max.mg_value:
                raise ValueError(f"renal band {band.label}: daily_min above daily_max")
        for lower, upper in itertools.pairwise(bands):
            if lower.max_crcl != upper.min_crcl:
                raise ValueError(
                    f"renal bands {lower.label} and {upper.label} leave a gap or overlap"
                )
        if bands and (bands[0].min_crcl != 0 or bands[-1].max_crcl is not None):
            raise ValueError("renal bands must cover CrCl 0 to unbounded")
        return self

    def matches(self, medicine_name: str) -> bool:
        """Is a recorded medicine called ``medicine_name`` this drug?"""
        words = set(re.sub(r"[^a-z0-9]+", " ", medicine_name.lower()).split())
        entries = self.names or (self.id.split("_")[0],)
        return any(set(entry.lower().split()) <= words for entry in entries)

    @property
    def max_mg(self) -> Decimal | None:
        return self.max_daily_dose.mg if self.max_daily_dose else None

    def renal_band(self, crcl: float) -> RenalBand | None:
        for band in self.renal_bands:
            if band.contains(crcl):
                return band
        return None

    def citing(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        """Every (where, citations) pair in the monograph, for the loader's checks."""
        who = f"drug {self.id!r}"
        if self.titration:
            yield f"{who} titration", self.titration.citations
        for name in ("usual_target", "max_daily_dose", "regimen", "nnt", "nnh", "combination_note"):
            item = getattr(self, name)
            if item is not None:
                yield f"{who} {name}", item.citations
        for band in self.renal_bands:
            yield f"{who} renal band {band.label}", band.citations
        for limit in self.dose_limits:
            yield f"{who} dose limit ({limit.group})", limit.citations
        for name in ("hepatic", "contraindications", "cautions", "interactions", "side_effects"):
            for i, item in enumerate(getattr(self, name)):
                yield f"{who} {name}[{i}]", item.citations


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{where}: {msg}" if where else msg


def load_monographs(
    root: Traversable | Path, sources: dict[str, Source] | None = None
) -> dict[str, Monograph]:
    """Read ``root/drugs/*.yaml``; with ``sources``, refuse citations of unknown ids."""
    drugs_dir = root / "drugs"
    if not drugs_dir.is_dir():
        return {}
    out: dict[str, Monograph] = {}
    for node in sorted(drugs_dir.iterdir(), key=lambda n: n.name):
        if not node.name.endswith(".yaml"):
            continue
        where = f"drugs/{node.name}"
        try:
            raw = yaml.safe_load(node.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise EvidenceError(f"{where}: not valid YAML ({exc})") from None
        try:
            mono = Monograph.model_validate(raw)
        except ValidationError as exc:
            raise EvidenceError(f"{where}: {_describe(exc)}") from None
        except LdncareError as exc:
            raise EvidenceError(f"{where}: {exc}") from None
        if node.name != f"{mono.id}.yaml":
            raise EvidenceError(f"{where}: id {mono.id!r} does not match the file name")
        if mono.id in out:
            raise EvidenceError(f"{where}: duplicate drug id {mono.id!r}")
        if sources is not None:
            for who, cites in mono.citing():
                for cid in cites:
                    if cid not in sources:
                        raise EvidenceError(f"{where}: {who} cites unknown source {cid!r}")
        out[mono.id] = mono
    return out
