"""Server-rendered pages: login, the clinician's dashboard and patient page with its forms,
and the patient's own phone-friendly pages. They call the same service functions as the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from ldncare.core.diary import SIDE_EFFECT_KINDS
from ldncare.errors import InvalidInput, LdncareError, NotFound
from ldncare.evidence.loader import load_evidence
from ldncare.web import csrf, deps, forms, service
from ldncare.web.auth import (
    CurrentUser,
    attempt_login,
    authorize_patient,
    end_sessions,
    new_token,
    require_clinician,
)
from ldncare.web.charts import diary_chart_html
from ldncare.web.dashboard import by_urgency, dashboard_rows
from ldncare.web.labels import diary_error_text
from ldncare.web.service import (
    Adjustment,
    ExternalId,
    PatientRow,
    adjust_plan,
    create_patient,
    latest_assessment,
    nantes_answers,
    patient_record,
    run_form_assessment,
)
from ldncare.web.templating import page
from ldncare.web.views import (
    patient_guide,
    schedule_calendar,
    source_link,
    tonight,
)

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
MAX_UPLOAD = 1_000_000


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _form(request: Request) -> FormData:
    form = await request.form(max_files=1, max_fields=200)
    csrf.check_form(request, form)
    return form


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


# --- login ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClinicianPost:
    """What every clinician form post on a patient starts from."""

    user: CurrentUser
    form: FormData
    engine: Engine
    row: PatientRow


async def _clinician_post(request: Request, patient_id: int) -> _ClinicianPost:
    """Clinicians only; the form read; the patient checked against the user's clinic."""
    user = deps.user(request)
    require_clinician(user)
    form = await _form(request)
    engine = deps.engine(request)
    row = await _run(authorize_patient, engine, user, patient_id)
    return _ClinicianPost(user, form, engine, row)


def _login_page(request: Request, status: int = 200, **ctx: Any) -> Response:
    token = request.state.csrf or new_token()
    response = page(
        request,
        "login.html.j2",
        status_code=status,
        csrf=token,
        user=None,
        demo_logins=request.app.state.demo_logins,
        sso_enabled=request.app.state.sso is not None,
        **ctx,
    )
    if not request.state.csrf:
        request.app.state.sessions.write(response, None, token)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_fields=10)
    if not request.state.csrf or form.get("csrf_token") != request.state.csrf:
        return _login_page(request, 403, error="The login form expired; please try again.")
    username = str(form.get("username") or "")[:64]
    password = str(form.get("password") or "")[:256]
    ip = request.client.host if request.client else "unknown"
    attempt = await _run(
        attempt_login,
        deps.engine(request),
        request.app.state.limiter,
        ip,
        username,
        password,
        totp_required=request.app.state.settings.totp_required,
    )
    if attempt.retry_after:
        error = f"Too many failed logins. Try again in {attempt.retry_after} s."
        return _login_page(request, 429, error=error, username=username)
    found = attempt.user
    if found is None:
        return _login_page(request, 401, error="Wrong username or password.", username=username)
    if attempt.second_factor:  # the password was right; the code (or enrolment) comes next
        response = _redirect(f"/login/{attempt.second_factor}")
        sessions = request.app.state.sessions
        sessions.write_pending(response, found.id, found.session_generation, attempt.second_factor)
        return response
    response = _redirect("/me" if found.role == "patient" else "/")
    request.app.state.sessions.write(response, found.id, generation=found.session_generation)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    user = request.state.user
    if user is not None:  # the cookie is gone here, and any copy of it is no longer accepted
        await _run(end_sessions, deps.engine(request), user.id, actor=user.actor)
    response = _redirect("/login")
    request.app.state.sessions.clear(response)
    return response


# --- clinician -----------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    user = deps.user(request)
    if user.role == "patient":
        return _redirect("/me")
    rows = by_urgency(dashboard_rows(deps.engine(request), user, deps.today(request)))
    return page(request, "dashboard.html.j2", rows=rows)


def _patient_form(
    request: Request,
    *,
    action: str,
    title: str,
    values: dict[str, str],
    status: int = 200,
    error: str | None = None,
    new: bool = True,
) -> Response:
    criteria = load_evidence().nantes
    return page(
        request,
        "patient_form.html.j2",
        status_code=status,
        action=action,
        title=title,
        values=values,
        new=new,
        nantes=criteria,
        error=error,
        today=deps.today(request),
    )


@router.get("/patients/new")
def new_patient_form(request: Request) -> Response:
    require_clinician(deps.user(request))
    return _patient_form(request, action="/patients/new", title="New patient", values={})


@router.post("/patients/new")
async def new_patient(request: Request) -> Response:
    user = deps.user(request)
    require_clinician(user)
    form = await _form(request)
    today = deps.today(request)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        data = forms.patient_data(form, external_id=None, today=today)
        answers = forms.nantes(form, load_evidence().nantes)
        start = forms.day(form, "start")
        clinic = forms.text(form, "clinic", limit=64) if user.role == "admin" else None
        row = await _run(
            create_patient,
            deps.engine(request),
            user,
            data,
            today=today,
            start=start,
            nantes=answers,
            clinic=clinic,
        )
    except LdncareError as exc:
        return _patient_form(
            request,
            action="/patients/new",
            title="New patient",
            values=values,
            status=422,
            error=str(exc),
        )
    return _redirect(f"/patients/{row.id}?msg=created")


MESSAGES = {
    "created": "Patient stored with plan version 1.",
    "assessed": "Assessment recorded; a new plan version was made.",
    "adjusted": "Plan adjusted; a new version was stored.",
    "noted": "Review note saved.",
    "diary": "Diary day saved.",
    "imported": "Diary imported.",
}


@router.get("/patients/by-external/{external_id}")
def patient_by_external(request: Request, external_id: str) -> Response:
    """The patient page by external id (the FHIR Patient id CDS Hooks cards link with)."""
    user = deps.user(request)
    require_clinician(user)
    row = authorize_patient(deps.engine(request), user, ExternalId(external_id))
    return _redirect(f"/patients/{row.id}")


@router.get("/patients/{patient_id}")
def patient_page(request: Request, patient_id: int) -> Response:
    user = deps.user(request)
    require_clinician(user)
    today = deps.today(request)
    rec = patient_record(deps.engine(request), user, patient_id, today=today)
    contract = rec.latest
    return page(
        request,
        "patient.html.j2",
        row=rec.row,
        plan=rec.plan,
        plans=rec.plans,
        contract=contract,
        report=rec.report,
        changes=rec.changes,
        change_lines=rec.change_lines,
        changes_error=rec.changes_error,
        current_evidence=load_evidence().release.to_contract(),
        months=schedule_calendar(contract, today),
        chart=diary_chart_html(rec.diary, contract, title="Pain and sitting tolerance"),
        flags=rec.flags,
        notes=rec.notes,
        response=rec.response,
        status=rec.status,
        today=today,
        side_effect_kinds=SIDE_EFFECT_KINDS,
        message=MESSAGES.get(str(request.query_params.get("msg"))),
    )


@router.get("/patients/{patient_id}/assess")
def assess_form(request: Request, patient_id: int) -> Response:
    user = deps.user(request)
    require_clinician(user)
    engine = deps.engine(request)
    row = authorize_patient(engine, user, patient_id)
    last = latest_assessment(engine, row.id)
    values = forms.prefill(last.snapshot if last else row.snapshot)
    plan = service.latest_plan(engine, row.id, actor=user.actor)
    answers = nantes_answers(plan.contract) if plan else None
    for key, value in (answers or {}).items():
        values[f"nantes_{key}"] = "yes" if value else "no" if value is False else ""
    return _patient_form(
        request,
        action=f"/patients/{row.id}/assess",
        title=f"Assessment of {row.name or row.external_id}",
        values=values,
        new=False,
    )


@router.post("/patients/{patient_id}/assess")
async def assess(request: Request, patient_id: int) -> Response:
    post = await _clinician_post(request, patient_id)
    user, form, engine, row = post.user, post.form, post.engine, post.row
    today = deps.today(request)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        answers = forms.nantes(form, load_evidence().nantes)
        await _run(
            run_form_assessment,
            engine,
            user,
            row.id,
            form,
            today=today,
            start=forms.day(form, "start"),
            nantes=answers,
            reason=forms.text(form, "reason", limit=500),
        )
    except LdncareError as exc:
        return _patient_form(
            request,
            action=f"/patients/{row.id}/assess",
            title="Assessment",
            values=values,
            status=422,
            error=str(exc),
            new=False,
        )
    return _redirect(f"/patients/{row.id}?msg=assessed")


@router.get("/patients/{patient_id}/adjust")
def adjust_form(request: Request, patient_id: int) -> Response:
    user = deps.user(request)
    require_clinician(user)
    engine = deps.engine(request)
    row = authorize_patient(engine, user, patient_id)
    plan = service.latest_plan(engine, row.id, actor=user.actor)
    return page(request, "adjust.html.j2", row=row, plan=plan, values={})


@router.post("/patients/{patient_id}/adjust")
async def adjust(request: Request, patient_id: int) -> Response:
    post = await _clinician_post(request, patient_id)
    user, form, engine, row = post.user, post.form, post.engine, post.row
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        step_days = forms.text(form, "step_days", limit=3)
        review_weeks = forms.text(form, "review_weeks", limit=3)
        change = Adjustment(
            reason=forms.text(form, "reason", limit=500) or "",
            start=forms.day(form, "start"),
            target_dose=forms.text(form, "target_dose", limit=32),
            step_days=_int(step_days, "step_days", 1, 90),
            review_weeks=_int(review_weeks, "review_weeks", 1, 52),
            slow=form.get("slow") == "yes",
            time_of_day=forms.text(form, "time_of_day", limit=16),
        )
        await _run(adjust_plan, engine, user, row.id, change, today=deps.today(request))
    except LdncareError as exc:
        plan = await _run(service.latest_plan, engine, row.id, actor=user.actor)
        return page(
            request,
            "adjust.html.j2",
            status_code=422,
            row=row,
            plan=plan,
            values=values,
            error=str(exc),
        )
    return _redirect(f"/patients/{row.id}?msg=adjusted")


def _int(value: str | None, field: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidInput(f"a whole number {low}–{high}", field=field)
    return int(value)


@router.post("/patients/{patient_id}/review")
async def review(request: Request, patient_id: int) -> Response:
    post = await _clinician_post(request, patient_id)
    user, form, engine, row = post.user, post.form, post.engine, post.row
    text = forms.text(form, "text", limit=5000) or ""
    await _run(service.add_review_note, engine, row.id, text, actor=user.actor)
    return _redirect(f"/patients/{row.id}?msg=noted#review")


async def _save_diary(request: Request, user: CurrentUser, ref: int | str) -> int:
    form = await _form(request)
    engine = deps.engine(request)
    row = await _run(authorize_patient, engine, user, ref)
    entry = forms.diary_entry(form)
    # A second save of a day adds to it; "replace" starts the day afresh (a correction).
    save = (
        service.add_or_update_diary_entry
        if form.get("replace") == "yes"
        else service.add_to_diary_day
    )
    await _run(
        save,
        engine,
        row.id,
        entry,
        today=deps.today(request),
        actor=user.actor,
    )
    return row.id


@router.post("/patients/{patient_id}/diary")
async def clinician_diary(request: Request, patient_id: int) -> Response:
    user = deps.user(request)
    require_clinician(user)
    pid = await _save_diary(request, user, patient_id)
    return _redirect(f"/patients/{pid}?msg=diary")


@router.post("/patients/{patient_id}/diary/import")
async def import_diary(request: Request, patient_id: int) -> Response:
    user = deps.user(request)
    require_clinician(user)
    form = await _form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("choose a CSV file", field="file")
    raw = await upload.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        raise InvalidInput(f"the file is larger than {MAX_UPLOAD} bytes", field="file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", field="file") from None
    engine = deps.engine(request)
    row = await _run(authorize_patient, engine, user, patient_id)
    await _run(
        service.import_diary_csv,
        engine,
        row.id,
        text,
        today=deps.today(request),
        actor=user.actor,
    )
    return _redirect(f"/patients/{row.id}?msg=imported")


# --- the patient's own pages ---------------------------------------------------------------------


def _own_id(user: CurrentUser) -> int:
    if user.patient_id is None:
        raise NotFound("this account has no patient record; ask your clinic")
    return user.patient_id


def _own_page(request: Request, name: str, **ctx: Any) -> Response:
    user = deps.user(request)
    today = deps.today(request)
    rec = patient_record(deps.engine(request), user, _own_id(user), today=today)
    contract = rec.latest
    evidence = load_evidence()
    advice = [] if rec.response is None else list(rec.response.advice)
    return page(
        request,
        name,
        row=rec.row,
        plan=rec.plan,
        contract=contract,
        report=rec.report,
        tonight=tonight(contract, today),
        months=schedule_calendar(contract, today),
        chart=diary_chart_html(rec.diary, contract, title="My pain and sitting"),
        diary=rec.diary[-7:][::-1],
        guide=patient_guide(evidence),
        advice=advice,
        today=today,
        side_effect_kinds=SIDE_EFFECT_KINDS,
        **ctx,
    )


@router.get("/me")
def me(request: Request) -> Response:
    return _own_page(request, "me.html.j2")


@router.get("/me/diary")
def me_diary(request: Request) -> Response:
    msg = "Saved. Thank you!" if request.query_params.get("msg") == "saved" else None
    return _own_page(request, "me_diary.html.j2", message=msg)


@router.post("/me/diary")
async def me_diary_save(request: Request) -> Response:
    user = deps.user(request)
    try:
        await _save_diary(request, user, _own_id(user))
    except InvalidInput as exc:
        return await _run(_diary_error, request, diary_error_text(exc))
    return _redirect("/me/diary?msg=saved")


def _diary_error(request: Request, error: str) -> Response:
    response = _own_page(request, "me_diary.html.j2", error=error)
    response.status_code = 422
    return response


@router.get("/me/help")
def me_help(request: Request) -> Response:
    return _own_page(request, "me_help.html.j2")


# --- sources -------------------------------------------------------------------------------------


@router.get("/sources")
def sources_page(request: Request) -> Response:
    deps.user(request)
    evidence = load_evidence()
    items = sorted(evidence.sources.values(), key=lambda s: s.best_first)
    return page(request, "sources.html.j2", sources=items, source=None, citing=[])


@router.get("/sources/{source_id}")
def source_page(request: Request, source_id: str) -> Response:
    deps.user(request)
    evidence = load_evidence()
    found = evidence.sources.get(source_id)
    if found is None:
        raise NotFound(f"no source {source_id!r}")
    citing = [s for s in evidence.statements.values() if source_id in s.citations]
    rules = [r for r in evidence.rules.values() if source_id in r.citations]
    return page(
        request,
        "sources.html.j2",
        sources=[],
        source=found,
        citing=citing,
        rules=rules,
        link=source_link(found),
    )
