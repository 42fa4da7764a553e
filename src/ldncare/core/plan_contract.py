"""The ``ldncare.plan/1`` contract as a typed model: what every reader of a plan may rely on.

``TreatmentPlan.to_contract`` (``core/plan.py``) writes the contract as a plain JSON dict; that
dict is what is stored, exported and served, byte for byte. Readers of a whole plan (the
report, the web pages, the CLI, the plan comparison) parse it once with :func:`read_plan` and
then use attributes, so a misspelt key is a type error rather than a silent ``None``.

Versioning rule. Fields are only ever *added* within a schema version: ``ldncare.plan/1``
never loses, renames or retypes a field. A field added after the first release of plan/1 is
optional here with a default (``None`` or ``""``), so plans stored before it still parse; the
default is what a reader sees on those older plans. Removing, renaming or retyping a field
needs a new schema id (``ldncare.plan/2``). Every model forbids unknown keys
(``extra="forbid"``): a new field the builders emit without a field here fails the tests
(``tests/unit/test_plan_contract.py``) instead of slipping in unmodelled. The published JSON
Schema (``docs/plan-contract.schema.json``) is generated from these models by
``scripts/plan_contract_schema.py`` and a test fails when it differs from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ldncare.errors import InvalidInput

_M = TypeVar("_M", bound=BaseModel)

SCHEMA_ID = "ldncare.plan/1"

Eligibility = Literal["eligible", "eligible_with_cautions", "not_recommended"]
Severity = Literal["contraindication", "warning", "info"]
CourseKind = Literal["new", "continue", "adjust", "withheld", "not_started"]
Suitability = Literal["current", "preferred", "suitable", "caution", "avoid"]
CurrentAdvice = Literal["reduce", "switch", "review", "optimise", "continue"]
NantesStatus = Literal["criteria_met", "criteria_not_met", "exclusion_present", "incomplete"]
ResponseStatus = Literal[
    "too_early",
    "insufficient_data",
    "responder_substantial",
    "responder_moderate",
    "minimal",
    "non_responder",
]
#: A number the builders write as an integer when it is whole (options' doses).
Number = int | float


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- evidence, patient ----------------------------------------------------------------------


class EvidenceRelease(_Part):
    """The evidence base the plan was made with (added in plan/1 by issue 22)."""

    version: str
    reviewed_up_to: date


class PlanPatient(_Part):
    id: str
    name: str | None
    #: Age in whole years on ``as_of``; None when the birth date is unknown.
    age: int | None
    sex: str | None


# --- ldn ------------------------------------------------------------------------------------


class Finding(_Part):
    """A screening decision with its basis: the rule, why it holds, the sources."""

    rule: str
    severity: Severity
    message: str
    rationale: str
    citations: list[str]


class DoseQuantity(_Part):
    value: float
    unit: Literal["mg"]


class ScheduleStep(_Part):
    step: int
    start_date: date
    end_date: date
    dose_mg: float
    dose: DoseQuantity
    time_of_day: str
    instruction: str


class Course(_Part):
    """How the schedule follows the record (added in plan/1 with the course rules)."""

    kind: CourseKind
    #: LDN already on record (mg a day); None for a new start.
    current_dose: DoseQuantity | None
    #: First day of the schedule; None when nothing is scheduled.
    start: date | None
    #: Findings that changed the default schedule.
    rules: list[str]


class Ldn(_Part):
    eligibility: Eligibility
    findings: list[Finding]
    #: Empty when LDN is not recommended or withheld.
    schedule: list[ScheduleStep]
    review_date: date | None
    target_reached: date | None
    max_daily_dose_mg: float
    formulation: str | None
    notes: list[str]
    citations: list[str]
    course: Course | None = None

    @property
    def first_dose(self) -> date | None:
        """Start of the first LDN step; None without a schedule."""
        return min((s.start_date for s in self.schedule), default=None)


# --- guidance, care -------------------------------------------------------------------------


class GuidanceStatement(_Part):
    statement: str
    text: str
    citations: list[str]


class Guidance(_Part):
    from_the_guidelines: list[GuidanceStatement]
    key_considerations: list[GuidanceStatement]
    treatment_approach: list[GuidanceStatement]

    def sections(self) -> dict[str, list[GuidanceStatement]]:
        """The three sections by name, in report order."""
        return {
            "from_the_guidelines": self.from_the_guidelines,
            "key_considerations": self.key_considerations,
            "treatment_approach": self.treatment_approach,
        }


class CareItem(_Part):
    id: str
    kind: str
    title: str
    text: str
    citations: list[str]


# --- options --------------------------------------------------------------------------------


class OptionReason(_Part):
    message: str
    citations: list[str]
    rule: str
    #: Why the rule holds (added in plan/1 by the issue 14 review).
    rationale: str = ""


class OptionStep(_Part):
    start_date: date
    #: None for the step the patient stays on.
    end_date: date | None
    dose_mg: Number
    doses_per_day: int
    time_of_day: str


class CurrentMedicine(_Part):
    """What an option the patient already takes carries (``suitability`` ``current``)."""

    medicines: list[str]
    daily_dose_mg: Number | None
    advice: CurrentAdvice | None


class Option(_Part):
    drug: str
    name: str
    suitability: Suitability
    combinable_with_ldn: bool
    reasons: list[OptionReason]
    schedule: list[OptionStep]
    max_daily_dose_mg: Number | None
    #: Present only on a ``current`` option (absent otherwise).
    current: CurrentMedicine | None = None

    def citation_ids(self) -> list[str]:
        return [c for r in self.reasons for c in r.citations]


# --- citations ------------------------------------------------------------------------------


class Citation(_Part):
    #: The number the Markdown/HTML report prints.
    number: int
    id: str
    reference: str
    evidence_type: str
    grade: str
    year: int
    population: str | None = None
    size: str | None = None
    pmid: str | None
    doi: str | None
    url: str | None


# --- optional parts: Nantes criteria, response ----------------------------------------------


class Nantes(_Part):
    """The Nantes criteria result, when the clinician answered the checklist."""

    status: NantesStatus
    meaning: str
    citations: list[str]
    essential_present: list[str]
    essential_absent: list[str]
    exclusions_present: list[str]
    complementary_present: list[str]
    associated_present: list[str]
    unanswered: list[str]


class DiaryWindow(_Part):
    start: date
    end: date
    days_recorded: int
    days_in_window: int
    mean: float | None


class Pgic(_Part):
    value: int
    label: str
    day: date | None
    responder: bool


class SittingTolerance(_Part):
    baseline: DiaryWindow
    current: DiaryWindow
    change_minutes: float | None
    percent_change: float | None


class Advice(_Part):
    action: str
    message: str
    rule: str
    citations: list[str]


class Response(_Part):
    """The diary judged against the benchmarks (``ldncare review --format json`` adds it)."""

    status: ResponseStatus
    as_of: date
    first_dose: date
    baseline: DiaryWindow
    current: DiaryWindow
    percent_reduction: float | None
    due_date: date
    reason: str | None
    pgic: Pgic | None
    sitting_tolerance: SittingTolerance
    advice: list[Advice]
    citations: list[str]


# --- the plan -------------------------------------------------------------------------------


class PlanContract(_Part):
    """One ``ldncare.plan/1`` document.

    Fields are only added within a schema version (see the module docstring): a field added
    after plan/1 was first released has a default, so older stored plans still parse.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="ldncare.plan/1",
        json_schema_extra={
            "description": (
                "The LDN plan contract. Fields are only ever added within a schema version; "
                "removing, renaming or retyping one needs a new schema id."
            ),
        },
    )

    schema_: Literal["ldncare.plan/1"] = Field(alias="schema")
    #: The day medications and age are judged on.
    as_of: date
    evidence: EvidenceRelease | None = None
    patient: PlanPatient
    ldn: Ldn
    guidance: Guidance
    care: list[CareItem]
    options: list[Option]
    citations: list[Citation]
    nantes: Nantes | None = None
    response: Response | None = None

    def citation_numbers(self) -> dict[str, int]:
        """Citation id -> the number the report prints."""
        return {c.id: c.number for c in self.citations}

    @property
    def first_dose(self) -> date | None:
        """Start of the first LDN step; None without a schedule."""
        return self.ldn.first_dose


def read_plan(contract: PlanContract | Mapping[str, Any]) -> PlanContract:
    """Parse a plan contract once where it enters a reader; a model passes through.

    A document that is not a valid ``ldncare.plan/1`` raises :class:`InvalidInput` naming the
    first field that is wrong.
    """
    return _read(PlanContract, contract, "plan", "")


def _read(model: type[_M], value: _M | Mapping[str, Any], what: str, prefix: str) -> _M:
    """``value`` as a ``model`` (an instance passes through); a document that is not valid
    raises :class:`InvalidInput` naming its first wrong field, under ``prefix``."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise _invalid(exc, what, prefix) from None


def _invalid(exc: ValidationError, what: str, prefix: str) -> InvalidInput:
    first = exc.errors()[0]
    where = ".".join([*([prefix] if prefix else []), *(str(p) for p in first["loc"])])
    return InvalidInput(
        f"not an {SCHEMA_ID} {what}: {first['msg']} at {where or 'the top level'} "
        f"({exc.error_count()} error(s))",
        field=where or None,
    )


def read_ldn(part: Ldn | Mapping[str, Any]) -> Ldn:
    """Parse the ``ldn`` part of a plan alone (what the dashboard loads from the database);
    a model passes through. A part that is not valid raises :class:`InvalidInput` naming the
    first wrong field from the plan's top (``ldn.schedule.0.dose_mg``)."""
    return _read(Ldn, part, "ldn part", "ldn")


#: What a reader of the LDN part takes: the typed part, a parsed plan, or a stored plan dict
#: (the store and callers outside the core still hand one over; its ``ldn`` is parsed alone).
PlanLike = Ldn | PlanContract | Mapping[str, Any]


def ldn_of(plan: PlanLike) -> Ldn:
    """The typed LDN part of a plan: the part itself, a parsed plan's ``ldn``, or the ``ldn``
    member of a stored plan dict (parsed alone: readers of the LDN part need nothing else)."""
    if isinstance(plan, Ldn):
        return plan
    if isinstance(plan, PlanContract):
        return plan.ldn
    if not isinstance(plan, Mapping) or not isinstance(plan.get("ldn"), Mapping):
        raise InvalidInput(f"not an {SCHEMA_ID} plan: it has no ldn part", field="ldn")
    return read_ldn(plan["ldn"])


def options_of(plan: PlanLike) -> list[Option]:
    """The typed alternatives of a plan (none for an LDN part alone, or a stored plan without
    them)."""
    if isinstance(plan, Ldn):
        return []
    if isinstance(plan, PlanContract):
        return list(plan.options)
    raw = plan.get("options") if isinstance(plan, Mapping) else None
    if not isinstance(raw, list):
        return []
    try:
        return [Option.model_validate(o) for o in raw]
    except ValidationError as exc:
        raise InvalidInput(
            f"not an {SCHEMA_ID} plan: bad options ({exc.errors()[0]['msg']})", field="options"
        ) from None


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of the contract (what ``docs/plan-contract.schema.json`` holds)."""
    schema = PlanContract.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def plan_json_schema_text() -> str:
    """The schema as the committed file's text: two-space indent, keys in model order."""
    return json.dumps(plan_json_schema(), indent=2, ensure_ascii=False) + "\n"
