"""Demo data for ``ldncare serve --demo``: synthetic patients at every stage, with diaries.

Loaded only into an empty database (no patients, no users). Every person here is invented.
Dates are relative to "today" so that the stages stay true whenever the demo is started.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from ldncare.core.diary import DiaryEntry, SideEffect
from ldncare.core.plan_contract import read_plan
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.planning import make_plan
from ldncare.store import repository
from ldncare.store.diary_csv import diary_to_csv
from ldncare.web.auth import create_user

ACTOR = "demo:loader"
CLINIC = "demo-clinic"
OTHER_CLINIC = "other-clinic"
#: One password for every demo account (printed on start-up; demo data is synthetic).
DEMO_PASSWORD = "ldncare-demo"


@dataclass(frozen=True)
class DemoPatient:
    key: str
    name: str
    birth: str
    sex: str
    stage: str
    #: Days between the first dose and today (negative: starts in the future).
    days_on: int | None
    #: Average pain before LDN and at the latest day; the diary moves between them.
    pain_before: int
    pain_now: int
    side_effect: str | None = None
    #: A later assessment finds this medicine (a new opioid: the safety alert).
    new_medicine: str | None = None


PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient("demo-titrating", "Anna Example", "1984-05-02", "female", "titrating", 12, 7, 6,
                side_effect="vivid_dreams"),
    DemoPatient("demo-trial", "Ben Sample", "1971-11-20", "male", "in trial", 60, 6, 5),
    DemoPatient("demo-review", "Clara Test", "1990-02-14", "female", "due for review", None, 7, 6),
    DemoPatient("demo-responder", "David Muster", "1966-08-30", "male", "responder", None, 7, 3),
    DemoPatient("demo-nonresponder", "Eva Probe", "1979-03-09", "female", "non-responder", None,
                6, 6),
    DemoPatient("demo-safety", "Frank Fiktiv", "1958-12-01", "male", "safety alert", 20, 7, 6,
                new_medicine="Tramadol"),
)  # fmt: skip


def is_empty(engine: Engine) -> bool:
    return repository.is_empty(engine)


def _patient_file(p: DemoPatient, medicines: list[dict[str, Any]], today: date) -> dict[str, Any]:
    return {
        "id": p.key,
        "name": p.name,
        "birth_date": p.birth,
        "sex": p.sex,
        "conditions": [{"name": "Pudendal neuralgia", "status": "active"}],
        "medications": [{"name": "Paracetamol", "status": "active", "dose": "1 g"}, *medicines],
        "labs": [
            {"test": "egfr", "value": 92, "unit": "mL/min/1.73m2", "date": today.isoformat()},
            {"test": "alt", "value": 22, "unit": "U/L", "date": today.isoformat(),
             "upper_limit": 35},
        ],
        "pregnant": False,
        "breastfeeding": False,
        "frail": False,
    }  # fmt: skip


def _diary(
    p: DemoPatient, start: date, today: date, rng: random.Random, review: date
) -> list[DiaryEntry]:
    first = start - timedelta(days=14)
    # Patients due for review kept a thin diary: too few days for a verdict.
    skip = 3 if p.stage == "due for review" else 1
    span = max((today - start).days, 1)
    out: list[DiaryEntry] = []
    day = first
    while day <= today:
        if (day - first).days % skip == 0:
            progress = 0.0 if day < start else min(1.0, (day - start).days / span)
            base = p.pain_before + (p.pain_now - p.pain_before) * progress
            avg = max(0, min(10, round(base + rng.choice((-1, 0, 0, 1)))))
            worst = min(10, avg + rng.choice((1, 2, 2, 3)))
            sitting = max(5, int(90 - 8 * avg + rng.randint(-10, 10)))
            effects: tuple[SideEffect, ...] = ()
            if p.side_effect and day >= start and rng.random() < 0.35:
                effects = (
                    SideEffect.model_validate({"effect": p.side_effect, "severity": "mild"}),
                )
            pgic = None
            if day >= review - timedelta(days=2) and day >= start:
                pgic = 2 if p.pain_now <= p.pain_before - 3 else 4
            out.append(
                DiaryEntry(
                    day=day,
                    pain_avg=avg,
                    pain_worst=worst,
                    sitting_minutes=sitting,
                    sleep_quality=rng.randint(4, 8),
                    side_effects=effects,
                    dose_taken=None,
                    pgic=pgic,
                )
            )
        day += timedelta(days=1)
    return out


def _review_date(contract: dict[str, Any]) -> date:
    """Every demo patient is on an LDN schedule, so its plan has a review date."""
    review = read_plan(contract).ldn.review_date
    if review is None:
        raise AssertionError("a demo patient's plan has no LDN schedule")
    return review


def load_demo(engine: Engine, *, today: date | None = None) -> list[tuple[str, str, str]]:
    """Fill an empty database; returns the demo logins as (username, password, role)."""
    today = today or date.today()
    evidence = load_evidence()
    rng = random.Random(20261125)
    logins: list[tuple[str, str, str]] = []

    def user(name: str, role: str, **kw: Any) -> None:
        create_user(engine, name, DEMO_PASSWORD, role=role, actor=ACTOR, **kw)
        logins.append((name, DEMO_PASSWORD, role))

    user("clinician", "clinician", clinic_id=CLINIC)
    user("other.clinician", "clinician", clinic_id=OTHER_CLINIC)
    user("admin", "admin", clinic_id=CLINIC)
    for p in PATIENTS:
        patient = patient_from_data(_patient_file(p, [], today))
        probe = make_plan(patient, start=today, as_of=today).to_contract(evidence)
        length = (_review_date(probe) - today).days
        days_on = p.days_on if p.days_on is not None else length + 5
        start = today - timedelta(days=days_on)
        contract = make_plan(patient, start=start, as_of=start).to_contract(evidence)
        row = repository.add_patient(
            engine, patient, plan_contract=contract, clinic_id=CLINIC, actor=ACTOR
        )
        review = _review_date(contract)
        entries = _diary(p, start, today, rng, review)
        repository.import_diary_csv(engine, row.id, diary_to_csv(entries), today=today, actor=ACTOR)
        if p.new_medicine:
            later = patient_from_data(
                _patient_file(p, [{"name": p.new_medicine, "status": "active", "dose": "50 mg"}],
                              today)
            )  # fmt: skip
            new = make_plan(later, start=start, as_of=today).to_contract(evidence)
            repository.add_assessment(engine, row.id, later.model_dump(mode="json"), actor=ACTOR)
            repository.save_plan(
                engine, row.id, new, reason=f"{p.new_medicine} found at review", actor=ACTOR
            )
        user(p.key.removeprefix("demo-"), "patient", patient=row.id)
    return logins


def load_if_empty(
    engine: Engine, *, clock: Callable[[], date] = date.today
) -> list[tuple[str, str, str]] | None:
    """Load the demo into an empty database; None when it already holds data."""
    if not is_empty(engine):
        return None
    return load_demo(engine, today=clock())
