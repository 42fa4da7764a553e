"""The "Ask" page: a search box answering questions from the evidence base in reference form.

The page and ``POST /api/ask`` call the same :func:`ldncare.ask.answer_question`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ldncare.core.answer import GENERAL_NOTE, SECTION_TITLES
from ldncare.web import deps, service
from ldncare.web.auth import authorize_patient
from ldncare.web.templating import page

router = APIRouter(include_in_schema=False)  # an HTML page, not part of the JSON API

#: How a finding's severity is labelled beside a patient line (as in the Markdown answer).
SEVERITY_LABELS = {"contraindication": "Contraindication", "warning": "Warning", "info": "Note"}


@router.get("/ask")
def ask_page(
    request: Request,
    q: Annotated[str, Query(max_length=1000)] = "",
    patient: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    user = deps.user(request)
    answer: dict[str, Any] | None = None
    question = q.strip()
    if len(question) >= 3:
        from ldncare.ask import answer_question

        contract = None
        if patient:
            engine = request.app.state.engine
            row = authorize_patient(engine, user, patient)
            plan = service.latest_plan(engine, row.id, actor=user.actor)
            contract = None if plan is None else plan.contract
        answer = answer_question(question, plan_contract=contract).to_contract()
    return page(
        request,
        "ask.html.j2",
        question=question,
        patient=patient or "",
        answer=answer,
        titles=SECTION_TITLES,
        severities=SEVERITY_LABELS,
        general_note=GENERAL_NOTE,
    )
