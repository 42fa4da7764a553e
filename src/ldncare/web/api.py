"""The JSON API under /api: everything the pages do, documented by the OpenAPI schema.

Authentication is the same session cookie as the pages (``POST /api/session`` logs in); every
write needs the session's CSRF token in the ``X-CSRF-Token`` header. Errors are
``{"detail": [{"loc": [...], "msg": "..."}]}`` with a 4xx status.
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import Engine

from ldncare.core.diary import SideEffect, SideEffectKind, SideEffectSeverity
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence
from ldncare.web import deps, service
from ldncare.web.auth import (
    CurrentUser,
    attempt_login,
    attempt_second_factor,
    authorize_patient,
    end_sessions,
    new_token,
    require_admin,
    require_clinician,
)
from ldncare.web.dashboard import dashboard_rows
from ldncare.web.forms import DAY_RANGE, EARLIEST_DAY, LATEST_DAY
from ldncare.web.handout import handout_pdf
from ldncare.web.ics import plan_calendar
from ldncare.web.service import (
    EXTERNAL_ID_PATTERN,
    MAX_EXTERNAL_ID,
    Adjustment,
    PatientRow,
    PlanRow,
    ReviewNoteRow,
    adjust_plan,
    audit,
    content_disposition,
    create_patient,
    patient_record,
)
from ldncare.web.service import run_assessment as assess
from ldncare.web.views import source_link, tonight


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer of the API: what was wrong (``msg``) and where (``loc``)."""

    detail: list[ErrorItem]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be read (not JSON, bad bytes)"},
    401: {"model": ErrorOut, "description": "Not logged in"},
    403: {"model": ErrorOut, "description": "Role not allowed, or missing CSRF token"},
    404: {"model": ErrorOut, "description": "No such record among those you can see"},
    413: {"model": ErrorOut, "description": "The request body is over the size limit"},
    422: {"model": ErrorOut, "description": "Invalid input; `detail[].loc` is the field path"},
    503: {"model": ErrorOut, "description": "The database is busy or unavailable; try again"},
}

router = APIRouter(prefix="/api", tags=["api"], responses=ERRORS)

Engine_ = Annotated[Engine, Depends(deps.engine)]
User = Annotated[CurrentUser, Depends(deps.user)]
Writer = Annotated[CurrentUser, Depends(deps.writer)]
Today = Annotated[date, Depends(deps.today)]
#: A database id, an external id, or explicitly ``id:N`` / ``ext:X`` (see
#: repository.patient_candidates): a number that is both is refused as ambiguous.
PatientId = Annotated[
    str, Path(min_length=1, max_length=132, pattern=r"^(?:id:|ext:)?[A-Za-z0-9._\-]+$")
]

Short = Annotated[str, Field(min_length=1, max_length=200)]
Code = Annotated[str, Field(min_length=1, max_length=64)]


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    """Dates in API input are ``YYYY-MM-DD`` text only: a number is not silently read as a
    Unix timestamp (``0`` would otherwise be 1 January 1970)."""
    if isinstance(value, str):
        try:
            found = date.fromisoformat(value) if _ISO_DAY.match(value) else None
        except ValueError:
            found = None
        if found is None:
            raise ValueError(f"a date is written YYYY-MM-DD, not {value[:40]!r}")
        if not EARLIEST_DAY <= found <= LATEST_DAY:
            raise ValueError(f"{value!r} is out of range: {DAY_RANGE}")
        return found
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class _In(BaseModel):
    # Strict: a number is not accepted as text, a string not as a number or a yes/no.
    model_config = ConfigDict(extra="forbid", strict=True)


# --- session -------------------------------------------------------------------------------------


class LoginIn(_In):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]
    #: The authenticator code (or a recovery code) of an account with two-step login.
    totp: Annotated[str | None, Field(min_length=1, max_length=64)] = None


class SessionOut(BaseModel):
    username: str | None
    role: str | None
    clinic_id: str | None
    patient_id: int | None
    csrf_token: str


@router.get("/session", response_model=SessionOut)
def get_session(request: Request) -> Any:
    """Who is logged in, and the CSRF token for API writes (starts a session if none)."""
    user = deps.optional_user(request)
    fresh = not request.state.csrf
    token = request.state.csrf or new_token()
    body = SessionOut(
        username=None if user is None else user.username,
        role=None if user is None else user.role,
        clinic_id=None if user is None else user.clinic_id,
        patient_id=None if user is None else user.patient_id,
        csrf_token=token,
    )
    response = JSONResponse(body.model_dump())
    if fresh:
        request.app.state.sessions.write(response, None, token)
    return response


@router.post(
    "/session",
    response_model=SessionOut,
    responses={429: {"model": ErrorOut, "description": "Too many failed logins; see Retry-After"}},
)
def login(request: Request, body: LoginIn, engine: Engine_) -> Any:
    """Log in with a username and password; sets the session cookie."""
    ip = request.client.host if request.client else "unknown"
    limiter = request.app.state.limiter
    attempt = attempt_login(
        engine,
        limiter,
        ip,
        body.username,
        body.password,
        totp_required=request.app.state.settings.totp_required,
    )
    if attempt.second_factor == "enrol":
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["body", "totp"],
                        "msg": "this account must set up two-step login first: log in on the "
                        "web page (/login) to enrol",
                    }
                ]
            },
            status_code=403,
        )
    if attempt.second_factor == "code" and attempt.user is not None:
        if body.totp is None:
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body", "totp"],
                            "msg": "this account uses two-step login: send the authenticator "
                            "code (or a recovery code) in 'totp'",
                        }
                    ]
                },
                status_code=401,
            )
        user = attempt.user
        # The password check above counted this attempt for the address already: one wrong
        # code costs one of the allowed attempts, not two.
        attempt = attempt_second_factor(
            engine, limiter, ip, user.id, user.session_generation, body.totp, ip_counted=True
        )
        if attempt.user is None and not attempt.retry_after:
            return JSONResponse(
                {"detail": [{"loc": ["body", "totp"], "msg": "wrong or already used code"}]},
                status_code=401,
            )
    if attempt.retry_after:
        wait = attempt.retry_after
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["body", "username"],
                        "msg": f"too many failed logins; try again in {wait} s",
                    }
                ]
            },
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    found = attempt.user
    if found is None:
        return JSONResponse(
            {"detail": [{"loc": ["body", "password"], "msg": "wrong username or password"}]},
            status_code=401,
        )
    token = new_token()
    out = SessionOut(
        username=found.username,
        role=found.role,
        clinic_id=found.clinic_id,
        patient_id=found.patient_id,
        csrf_token=token,
    )
    response = JSONResponse(out.model_dump())
    request.app.state.sessions.write(response, found.id, token, generation=found.session_generation)
    return response


@router.delete("/session", status_code=204)
def logout(request: Request, user: Writer, engine: Engine_) -> Response:
    """Log out: ends this account's sessions on every device (a copied cookie included)."""
    end_sessions(engine, user.id, actor=user.actor)
    response = Response(status_code=204)
    request.app.state.sessions.clear(response)
    return response


# --- patients ------------------------------------------------------------------------------------


class ConditionIn(_In):
    name: Short
    code: Code | None = None
    system: Short | None = None
    status: Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"] = (
        "active"
    )
    onset: IsoDate | None = None
    resolved: IsoDate | None = None


class MedicationIn(_In):
    name: Short
    rxnorm: Annotated[str, Field(pattern=r"^\d{1,12}$")] | None = None
    status: Literal[
        "active", "on-hold", "completed", "stopped", "cancelled", "intended", "unknown"
    ] = "active"
    start: IsoDate | None = None
    end: IsoDate | None = None
    dose: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class LabIn(_In):
    test: Literal["egfr", "creatinine", "alt", "ast", "bilirubin", "albumin", "inr", "hcg", "tsh"]
    value: Annotated[float, Field(ge=0, le=100000)]
    unit: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    date: Annotated[dt.date, BeforeValidator(_iso_date)] | None = None
    upper_limit: Annotated[float, Field(gt=0, le=100000)] | None = None


class AllergyIn(_In):
    substance: Short
    code: Code | None = None
    system: Short | None = None
    active: bool = True


class PatientIn(_In):
    """A patient in the patient-file format (docs/patient-file.md)."""

    id: Annotated[str, Field(min_length=1, max_length=MAX_EXTERNAL_ID, pattern=EXTERNAL_ID_PATTERN)]
    name: Annotated[str, Field(max_length=256)] | None = None
    birth_date: IsoDate | None = None
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    weight_kg: Annotated[float, Field(gt=0, le=500)] | None = None
    height_cm: Annotated[float, Field(gt=0, le=300)] | None = None
    conditions: Annotated[list[ConditionIn], Field(max_length=100)] = []
    medications: Annotated[list[MedicationIn], Field(max_length=100)] = []
    labs: Annotated[list[LabIn], Field(max_length=200)] = []
    allergies: Annotated[list[AllergyIn], Field(max_length=100)] = []
    pregnant: bool | None = None
    breastfeeding: bool | None = None
    planned_surgery: IsoDate | None = None
    frail: bool | None = None


NantesAnswers = Annotated[
    dict[Annotated[str, Field(max_length=64)], bool | None], Field(max_length=64)
]


class NewPatientIn(_In):
    patient: PatientIn
    start: IsoDate | None = Field(default=None, description="First LDN day; default today")
    nantes: NantesAnswers | None = None
    clinic: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class AssessmentIn(_In):
    patient: PatientIn
    start: IsoDate | None = None
    nantes: NantesAnswers | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class AdjustIn(_In):
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    start: IsoDate | None = None
    target_dose: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None, description="e.g. '3 mg'"
    )
    step_days: Annotated[int, Field(ge=1, le=90)] | None = None
    review_weeks: Annotated[int, Field(ge=1, le=52)] | None = None
    slow: bool = False
    time_of_day: Literal["bedtime", "morning"] | None = None


class PatientOut(BaseModel):
    id: int
    external_id: str
    name: str | None
    birth_date: date | None
    clinic_id: str | None
    status: dict[str, Any] | None = None


class PlanOut(BaseModel):
    patient_id: int
    version: int
    reason: str
    created_at: str
    created_by: str
    contract: dict[str, Any]


def _patient_out(row: PatientRow, status: dict[str, Any] | None = None) -> PatientOut:
    return PatientOut(
        id=row.id,
        external_id=row.external_id,
        name=row.name,
        birth_date=row.birth_date,
        clinic_id=row.clinic_id,
        status=status,
    )


def _plan_out(row: PlanRow) -> PlanOut:
    return PlanOut(
        patient_id=row.patient_id,
        version=row.version,
        reason=row.reason,
        created_at=row.created_at.isoformat(),
        created_by=row.created_by,
        contract=row.contract,
    )


def _patient_data(p: PatientIn) -> dict[str, Any]:
    return p.model_dump(mode="json", exclude_none=True)


@router.get("/patients", response_model=list[PatientOut])
def list_patients(user: User, engine: Engine_, today: Today) -> Any:
    """The patients you can see, with their status and attention flags."""
    if user.role == "patient":
        if user.patient_id is None:
            return []
        row = authorize_patient(engine, user, user.patient_id)
        return [_patient_out(service.get_patient(engine, row.id, actor=user.actor))]
    return [
        _patient_out(r.patient, r.status.to_contract()) for r in dashboard_rows(engine, user, today)
    ]


@router.post("/patients", response_model=PatientOut, status_code=201)
def add_patient(body: NewPatientIn, user: Writer, engine: Engine_, today: Today) -> Any:
    """Store a patient with the first assessment and plan version 1."""
    row = create_patient(
        engine,
        user,
        _patient_data(body.patient),
        today=today,
        start=body.start,
        nantes=body.nantes,
        clinic=body.clinic,
    )
    return _patient_out(row)


@router.get("/patients/{patient_id}")
def get_patient(patient_id: PatientId, user: User, engine: Engine_, today: Today) -> Any:
    """One patient: status, latest plan, response judgement, tonight's dose."""
    rec = patient_record(engine, user, patient_id, today=today)
    return {
        "patient": _patient_out(rec.row, rec.status.to_contract()).model_dump(mode="json"),
        "plan": None if rec.plan is None else _plan_out(rec.plan).model_dump(mode="json"),
        "response": None if rec.response is None else rec.response.to_contract(),
        "tonight": tonight(rec.latest, today).to_contract(),
        "review_notes": len(rec.notes),
        "diary_days": len(rec.diary),
    }


@router.post("/patients/{patient_id}/assessments", response_model=PlanOut, status_code=201)
def add_assessment(
    patient_id: PatientId, body: AssessmentIn, user: Writer, engine: Engine_, today: Today
) -> Any:
    """Record a new assessment (and the Nantes checklist); gives a new plan version."""
    row = assess(
        engine,
        user,
        patient_id,
        _patient_data(body.patient),
        today=today,
        start=body.start,
        nantes=body.nantes,
        reason=body.reason,
    )
    return _plan_out(row)


@router.get("/patients/{patient_id}/plans", response_model=list[PlanOut])
def plans(patient_id: PatientId, user: User, engine: Engine_) -> Any:
    row = authorize_patient(engine, user, patient_id)
    return [_plan_out(p) for p in service.list_plans(engine, row.id, actor=user.actor)]


@router.get("/patients/{patient_id}/plans/latest", response_model=PlanOut)
def latest(patient_id: PatientId, user: User, engine: Engine_) -> Any:
    row = authorize_patient(engine, user, patient_id)
    plan = service.latest_plan(engine, row.id, actor=user.actor)
    if plan is None:
        return JSONResponse(
            {"detail": [{"loc": ["path", "patient_id"], "msg": "this patient has no plan yet"}]},
            status_code=404,
        )
    return _plan_out(plan)


@router.post("/patients/{patient_id}/plans", response_model=PlanOut, status_code=201)
def adjust(
    patient_id: PatientId, body: AdjustIn, user: Writer, engine: Engine_, today: Today
) -> Any:
    """Adjust the plan (titration choices) with a reason: stored as a new version."""
    change = Adjustment(
        reason=body.reason,
        start=body.start,
        target_dose=body.target_dose,
        step_days=body.step_days,
        review_weeks=body.review_weeks,
        slow=body.slow,
        time_of_day=body.time_of_day,
    )
    return _plan_out(adjust_plan(engine, user, patient_id, change, today=today))


# --- diary ---------------------------------------------------------------------------------------


class SideEffectIn(_In):
    effect: SideEffectKind  # the core's fixed list, so the API cannot drift from it
    severity: SideEffectSeverity
    note: Annotated[str, Field(max_length=500)] | None = None


class DiaryIn(_In):
    day: IsoDate
    pain_avg: Annotated[int, Field(ge=0, le=10)] | None = None
    pain_worst: Annotated[int, Field(ge=0, le=10)] | None = None
    sitting_minutes: Annotated[int, Field(ge=0, le=1440)] | None = None
    sleep_quality: Annotated[int, Field(ge=0, le=10)] | None = None
    side_effects: Annotated[list[SideEffectIn], Field(max_length=10)] = []
    dose_taken: bool | None = None
    dose: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None, description="Dose taken with its unit, e.g. '1.5 mg'"
    )
    dose_time: Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")] | None = None
    pgic: Annotated[int, Field(ge=1, le=7)] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None


class DiaryOut(BaseModel):
    day: date
    pain_avg: int | None
    pain_worst: int | None
    sitting_minutes: int | None
    sleep_quality: int | None
    side_effects: list[dict[str, Any]]
    dose_taken: bool | None
    dose_mg: float | None
    pgic: int | None
    notes: str | None


class DiaryWriteOut(BaseModel):
    day: date
    created: bool
    flags: list[str]


def diary_values(body: DiaryIn) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True)
    dose = values.pop("dose", None)
    if dose is not None:
        values["dose_mg"] = dose
    values["side_effects"] = [SideEffect.model_validate(s) for s in values.get("side_effects", [])]
    return values


@router.get("/patients/{patient_id}/diary", response_model=list[DiaryOut])
def diary(patient_id: PatientId, user: User, engine: Engine_) -> Any:
    row = authorize_patient(engine, user, patient_id)
    return [
        DiaryOut(
            day=e.day,
            pain_avg=e.pain_avg,
            pain_worst=e.pain_worst,
            sitting_minutes=e.sitting_minutes,
            sleep_quality=e.sleep_quality,
            side_effects=[s.model_dump(mode="json") for s in e.side_effects],
            dose_taken=e.dose_taken,
            dose_mg=None if e.dose_mg is None else float(e.dose_mg),
            pgic=e.pgic,
            notes=e.notes,
        )
        for e in service.list_diary(engine, row.id, actor=user.actor)
    ]


@router.post("/patients/{patient_id}/diary", response_model=DiaryWriteOut)
def add_diary(
    patient_id: PatientId, body: DiaryIn, user: Writer, engine: Engine_, today: Today
) -> Any:
    """Record one day (a second entry for the same day replaces the first)."""
    row = authorize_patient(engine, user, patient_id)
    written = service.add_or_update_diary_entry(
        engine, row.id, diary_values(body), today=today, actor=user.actor
    )
    return DiaryWriteOut(day=written.entry.day, created=written.created, flags=list(written.flags))


MAX_CSV = 1_000_000


@router.post(
    "/patients/{patient_id}/diary/import",
    response_model=list[DiaryWriteOut],
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_diary(
    patient_id: PatientId, request: Request, user: Writer, engine: Engine_, today: Today
) -> Any:
    """Import a diary CSV (the export's columns), all or nothing."""
    raw = await request.body()
    if len(raw) > MAX_CSV:
        raise InvalidInput(f"the CSV is larger than {MAX_CSV} bytes", field="body")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV is not UTF-8 text", field="body") from None

    def work() -> list[DiaryWriteOut]:
        row = authorize_patient(engine, user, patient_id)
        written = service.import_diary_csv(engine, row.id, text, today=today, actor=user.actor)
        return [
            DiaryWriteOut(day=w.entry.day, created=w.created, flags=list(w.flags)) for w in written
        ]

    return await run_in_threadpool(work)


@router.get(
    "/patients/{patient_id}/diary.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_diary(patient_id: PatientId, user: User, engine: Engine_) -> Response:
    row = authorize_patient(engine, user, patient_id)
    text = service.export_diary_csv(engine, row.id, actor=user.actor)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(
                "attachment", f"diary-{row.external_id}", ".csv"
            )
        },
    )


@router.get("/patients/{patient_id}/response")
def response_judgement(patient_id: PatientId, user: User, engine: Engine_, today: Today) -> Any:
    """Did LDN help? The diary judged against the plan, with advice and its basis."""
    rec = patient_record(engine, user, patient_id, today=today)
    return {
        "status": rec.status.to_contract(),
        "response": None if rec.response is None else rec.response.to_contract(),
    }


# --- handout and calendar ------------------------------------------------------------------------


def _latest_or_404(engine: Engine, user: CurrentUser, patient_id: str) -> tuple[int, PlanRow]:
    row = authorize_patient(engine, user, patient_id)
    plan = service.latest_plan(engine, row.id, actor=user.actor)
    if plan is None:
        from ldncare.errors import NotFound

        raise NotFound("this patient has no plan yet", field="patient_id")
    return row.id, plan


@router.get(
    "/patients/{patient_id}/handout.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def handout(patient_id: PatientId, user: User, engine: Engine_) -> Response:
    """The printable patient handout of the latest plan (PDF)."""
    pid, plan = _latest_or_404(engine, user, patient_id)
    entries = service.list_diary(engine, pid, actor=user.actor)
    pdf = handout_pdf(plan.contract, version=plan.version, diary=entries)
    audit(engine, user.actor, "export", "handout", pid, {"version": plan.version})
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="ldn-plan-v{plan.version}.pdf"'},
    )


@router.get(
    "/patients/{patient_id}/calendar.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
def calendar_ics(patient_id: PatientId, user: User, engine: Engine_) -> Response:
    """The dose steps and the review date as an iCalendar file."""
    pid, plan = _latest_or_404(engine, user, patient_id)
    body = plan_calendar(plan.contract, patient_key=str(pid), version=plan.version)
    audit(engine, user.actor, "export", "calendar", pid, {"version": plan.version})
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="ldn-schedule.ics"'},
    )


# --- review notes --------------------------------------------------------------------------------


class ReviewIn(_In):
    text: Annotated[str, Field(min_length=1, max_length=5000)]


class ReviewOut(BaseModel):
    id: int
    text: str
    created_at: str
    created_by: str


def _review_out(n: ReviewNoteRow) -> ReviewOut:
    return ReviewOut(
        id=n.id, text=n.text, created_at=n.created_at.isoformat(), created_by=n.created_by
    )


@router.get("/patients/{patient_id}/review-notes", response_model=list[ReviewOut])
def review_notes(patient_id: PatientId, user: User, engine: Engine_) -> Any:
    require_clinician(user)
    row = authorize_patient(engine, user, patient_id)
    return [_review_out(n) for n in service.list_review_notes(engine, row.id, actor=user.actor)]


@router.post("/patients/{patient_id}/review-notes", response_model=ReviewOut, status_code=201)
def add_review_note(patient_id: PatientId, body: ReviewIn, user: Writer, engine: Engine_) -> Any:
    require_clinician(user)
    row = authorize_patient(engine, user, patient_id)
    return _review_out(service.add_review_note(engine, row.id, body.text, actor=user.actor))


# --- sources, ask, audit -------------------------------------------------------------------------


class SourceOut(BaseModel):
    id: str
    reference: str
    year: int
    evidence_type: str
    grade: str
    pmid: str | None
    doi: str | None
    link: str


SourceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


def _source_out(source: Any) -> SourceOut:
    return SourceOut(
        id=source.id,
        reference=source.reference_text(),
        year=source.year,
        evidence_type=source.evidence_type,
        grade=source.grade,
        pmid=source.pmid,
        doi=source.doi,
        link=source_link(source),
    )


@router.get("/sources", response_model=list[SourceOut])
async def sources() -> Any:
    """The bibliography every statement and rule cites."""
    return [_source_out(s) for s in load_evidence().sources.values()]


@router.get("/sources/{source_id}", response_model=SourceOut)
async def source(source_id: SourceId) -> Any:
    found = load_evidence().sources.get(source_id)
    if found is None:
        from ldncare.errors import NotFound

        raise NotFound(f"no source {source_id!r}", field="source_id")
    return _source_out(found)


class AskIn(_In):
    question: Annotated[str, Field(min_length=3, max_length=1000)]
    patient_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


@router.post("/ask")
def ask(body: AskIn, user: Writer, engine: Engine_) -> Any:
    """Answer a question from the evidence base, citing its sources; with a patient, against
    that patient's latest plan."""
    contract = None
    if body.patient_id is not None:
        row = authorize_patient(engine, user, body.patient_id)
        plan = service.latest_plan(engine, row.id, actor=user.actor)
        contract = None if plan is None else plan.contract
    from ldncare.ask import answer_question

    answer = answer_question(body.question, plan_contract=contract)
    result: dict[str, Any] = answer.to_contract()
    return result


@router.get("/admin/cds-cards")
async def cds_card_outcomes(request: Request, user: User) -> Any:
    """How each CDS Hooks card fares (administrators only): per service and card topic, the
    cards shown, accepted and overridden, the override reasons by code and the newest
    comments -- the figures of the /admin/cds-cards page."""
    from ldncare.web.admin_page import card_outcomes

    return [f.as_json() for f in await card_outcomes(request)]


@router.get("/audit")
def audit_log(
    user: User, engine: Engine_, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> Any:
    """The latest audit-log rows (administrators only)."""
    require_admin(user)
    rows = list(service.audit_entries(engine))[-limit:]
    return [
        {
            "at": r.at.isoformat(),
            "who": r.who,
            "action": r.action,
            "entity": r.entity,
            "entity_id": r.entity_id,
            "detail": r.detail,
        }
        for r in rows
    ]
