"""Typed shapes of the evidence base. Unknown keys are errors (``extra="forbid"``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ldncare.core.quantity import Dose, parse_dose
from ldncare.evidence.monographs import Monograph
from ldncare.evidence.nantes import NantesCriteria

EvidenceType = Literal[
    "guideline",
    "systematic_review",
    "rct",
    "nonrandomised_trial",
    "cohort",
    "case_series",
    "consensus",
    "trial_registration",
    "regulator",
    "product_label",
    "expert_review",
]
#: Strength of a source for questions of benefit, best first. Ask ranks by this, then recency.
EVIDENCE_RANK: dict[str, int] = {
    "guideline": 0,
    "systematic_review": 1,
    "rct": 2,
    "consensus": 3,
    # A controlled trial without randomisation (a single-blind fixed-order pilot, an up-and-down
    # dose-finding study): weaker than an RCT for benefit, ranked with cohort studies.
    "nonrandomised_trial": 4,
    "cohort": 4,
    "regulator": 5,
    "product_label": 5,
    "case_series": 6,
    "trial_registration": 7,
    "expert_review": 7,
}
Grade = Literal["high", "moderate", "low", "very_low"]
#: Certainty of the evidence (GRADE), best first.
GRADE_RANK: dict[str, int] = {"high": 0, "moderate": 1, "low": 2, "very_low": 3}
Population = Literal[
    "pudendal_neuralgia",
    "neuropathic_pain",
    "diabetic_neuropathy",
    "fibromyalgia",
    "chronic_pain",
    "general",
]
Severity = Literal["contraindication", "warning", "info"]
#: What a statement answers: the facets of a question (``ldncare.core.question``). ``answer``
#: marks a statement written to open a yes/no answer ("Yes, with caution: ...").
FACETS: tuple[str, ...] = (
    "answer",
    "overview",
    "dose",
    "timing",
    "trial",
    "mechanism",
    "side_effects",
    "warnings",
    "interactions",
    "monitoring",
    "response",
    "pregnancy",
    "organ",
    "surgery",
    "alternatives",
    "non_drug",
    "diagnosis",
    "regulatory",
    "evidence",
)


#: How a population reads next to a reference: the reader must see at a glance whether the
#: evidence is direct (pudendal neuralgia) or borrowed from another condition.
POPULATION_TEXT: dict[str, str] = {
    "pudendal_neuralgia": "pudendal neuralgia",
    "neuropathic_pain": "neuropathic pain",
    "diabetic_neuropathy": "diabetic neuropathy",
    "fibromyalgia": "fibromyalgia",
    "chronic_pain": "mixed chronic pain",
    "general": "general",
}
DESIGN_TEXT: dict[str, str] = {
    "guideline": "guideline",
    "systematic_review": "systematic review",
    "rct": "randomised trial",
    "nonrandomised_trial": "non-randomised trial",
    "cohort": "cohort study",
    "case_series": "case series",
    "consensus": "consensus",
    "trial_registration": "trial registration",
    "regulator": "regulator",
    "product_label": "product label",
    "expert_review": "narrative review",
}


def fit_text(population: str, evidence_type: str, size: str | None, year: int) -> str:
    """ "population: fibromyalgia; randomised trial, 31 women; 2013" (size left out if unknown)."""
    design = DESIGN_TEXT.get(evidence_type, evidence_type.replace("_", " "))
    if size:
        design += f", {size}"
    return f"population: {POPULATION_TEXT.get(population, population)}; {design}; {year}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """One entry of the bibliography."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    authors: str
    year: int = Field(ge=1900, le=2100)
    title: str
    journal: str | None = None
    #: Volume, issue and pages, e.g. "40(1):136-154".
    locator: str | None = None
    pmid: str | None = Field(default=None, pattern=r"^\d+$")
    doi: str | None = None
    url: str | None = None
    evidence_type: EvidenceType
    grade: Grade
    population: Population
    #: Clinical questions this source gives evidence on (e.g. ``ldn_efficacy``). Recency
    #: placeholders such as ``{latest_review:ldn_efficacy}`` pick the newest source of a kind among
    #: those tagged with the question, so "the most recent review" is computed, not written.
    evidence_for: tuple[str, ...] = ()
    #: How many studied, in words, as the source reports it ("31 women", "4 RCTs, 222
    #: patients"); only where confirmed, shown next to the reference with population and design.
    size: str | None = Field(default=None, min_length=1, max_length=60)
    note: str | None = None

    def fit_text(self) -> str:
        """Population, design, size and year, so a reader sees how well the evidence fits."""
        return fit_text(self.population, self.evidence_type, self.size, self.year)

    @property
    def rank(self) -> int:
        return EVIDENCE_RANK[self.evidence_type]

    @property
    def best_first(self) -> tuple[int, int, int, str]:
        """Sort key of "best evidence first": certainty (grade), then the kind of source, then
        the newest, then the id (so the order is total)."""
        return (GRADE_RANK[self.grade], self.rank, -self.year, self.id)

    def reference_text(self) -> str:
        """Vancouver-style one-line reference."""
        parts = [f"{self.authors}. {self.title.rstrip('.')}."]
        if self.journal:
            loc = f"{self.journal}. {self.year}"
            if self.locator:
                loc += f";{self.locator}"
            parts.append(loc + ".")
        else:
            parts.append(f"{self.year}.")
        if self.pmid:
            parts.append(f"PMID {self.pmid}.")
        if self.doi:
            parts.append(f"doi:{self.doi}.")
        if self.url and not (self.pmid or self.doi):
            parts.append(self.url)
        return " ".join(parts)


class Statement(_Strict):
    """A fact in our own words, citing one or more sources."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    topics: tuple[str, ...] = Field(min_length=1)
    text: str = Field(min_length=10)
    citations: tuple[str, ...]
    #: Population the cited evidence studied; "pudendal_neuralgia" means direct evidence.
    population: Population = "general"
    #: Who or what the statement is about: ``ldn``, ``pn`` (pudendal neuralgia),
    #: ``neuropathic_pain``, a drug monograph id or a drug class (``snri``, ``opioid`` ...).
    subjects: tuple[str, ...] = Field(min_length=1)
    #: Which facets of a question it answers (one of :data:`FACETS` each).
    facets: tuple[str, ...] = Field(min_length=1)
    #: The day a clinician last re-read the statement against its sources. Required of every
    #: statement in ``statements/*.yaml`` (the loader refuses one without it); statements derived
    #: at run time from a drug monograph have none.
    reviewed: date | None = None

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not v or not v.replace("_", "").isalnum() or v != v.lower()]
        if bad:
            raise ValueError(f"subject {bad[0]!r} is not a lower-case identifier")
        return value

    @field_validator("facets")
    @classmethod
    def _facets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in FACETS]
        if unknown:
            raise ValueError(f"unknown facet {unknown[0]!r}; known: {', '.join(FACETS)}")
        return value


class Rule(_Strict):
    """The wording and basis of a decision rule; the logic lives in ``core``, keyed by id."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    severity: Severity
    message: str
    rationale: str
    citations: tuple[str, ...]


class DoseRange(_Strict):
    min: Dose
    max: Dose

    @field_validator("min", "max", mode="before")
    @classmethod
    def _dose(cls, value: Any) -> Dose:
        return value if isinstance(value, Dose) else parse_dose(value)


class WeekRange(_Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=0)


class Formulation(_Strict):
    id: str
    label: str
    #: Smallest dose increment the formulation can deliver reliably.
    resolution: Dose
    note: str | None = None
    citations: tuple[str, ...] = ()

    @field_validator("resolution", mode="before")
    @classmethod
    def _dose(cls, value: Any) -> Dose:
        return value if isinstance(value, Dose) else parse_dose(value)


class TitrationDefaults(_Strict):
    start_dose: Dose
    step_dose: Dose
    step_days: int = Field(ge=1)
    target_dose: Dose
    review_weeks: int = Field(ge=1)

    @field_validator("start_dose", "step_dose", "target_dose", mode="before")
    @classmethod
    def _dose(cls, value: Any) -> Dose:
        return value if isinstance(value, Dose) else parse_dose(value)


class OpioidFreeDays(_Strict):
    """Days without opioids before naltrexone may start (product label)."""

    short_acting: int = Field(ge=0)
    long_acting: int = Field(ge=0)
    citations: tuple[str, ...] = Field(min_length=1)


class SurgeryStop(_Strict):
    """Days before an operation that may need opioids on which oral naltrexone is last taken."""

    days_before: int = Field(ge=1, le=14)
    citations: tuple[str, ...] = Field(min_length=1)


class LdnDosing(_Strict):
    """Dosing limits for LDN; every figure cited."""

    rxnorm_ingredient: str
    start_dose: DoseRange
    target_dose: DoseRange
    max_daily_dose: Dose
    titration_weeks: WeekRange
    trial_weeks: WeekRange
    time_of_day: Literal["bedtime", "morning"]
    defaults: TitrationDefaults
    formulations: tuple[Formulation, ...] = Field(min_length=1)
    citations: tuple[str, ...] = Field(min_length=1)
    opioid_free_days: OpioidFreeDays | None = None
    surgery_stop: SurgeryStop | None = None

    @field_validator("max_daily_dose", mode="before")
    @classmethod
    def _dose(cls, value: Any) -> Dose:
        return value if isinstance(value, Dose) else parse_dose(value)

    @property
    def max_mg(self) -> Decimal:
        return self.max_daily_dose.mg_value


CareKind = Literal[
    "physical_therapy",
    "nerve_block",
    "lifestyle",
    "referral",
    "notice",
    "monitoring",
    "education",
]


class CareItem(_Strict):
    id: str
    kind: CareKind
    title: str
    text: str
    citations: tuple[str, ...] = Field(min_length=1)


class ReportOutline(_Strict):
    """Which statements make each section of the plan report, in order."""

    from_the_guidelines: tuple[str, ...] = Field(min_length=1)
    key_considerations: tuple[str, ...] = Field(min_length=1)
    treatment_approach: tuple[str, ...] = Field(min_length=1)


class Release(_Strict):
    """The version of the evidence base and the day its evidence was reviewed up to."""

    version: str = Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")
    reviewed_up_to: date

    def to_contract(self) -> dict[str, str]:
        return {"version": self.version, "reviewed_up_to": self.reviewed_up_to.isoformat()}

    def label(self) -> str:
        """One line for a reader: "evidence base 2026.12.1, reviewed up to 2026-12-04"."""
        return f"evidence base {self.version}, reviewed up to {self.reviewed_up_to.isoformat()}"


class Evidence(_Strict):
    """The whole validated evidence base."""

    release: Release

    sources: dict[str, Source]
    statements: dict[str, Statement]
    rules: dict[str, Rule]
    ldn: LdnDosing
    care: tuple[CareItem, ...]
    report: ReportOutline
    #: Medication vocabulary (see ``evidence/vocabulary.py``); kept as plain data here.
    vocabulary: dict[str, Any] = Field(default_factory=dict)
    #: Drug monographs for alternatives and add-ons (``drugs/*.yaml``), by drug id.
    monographs: dict[str, Monograph] = Field(default_factory=dict)
    #: The Nantes checklist for pudendal neuralgia (``nantes.yaml``), if shipped.
    nantes: NantesCriteria | None = None

    def rule(self, rule_id: str) -> Rule:
        try:
            return self.rules[rule_id]
        except KeyError:
            from ldncare.errors import EvidenceError

            raise EvidenceError(
                f"rule {rule_id!r} is used by the code but not in rules.yaml"
            ) from None
