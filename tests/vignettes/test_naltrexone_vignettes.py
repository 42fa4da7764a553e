"""Naltrexone on the chart (core/naltrexone.py): LDN review due and "consider LDN", by vignette.

ldn.yaml gives a trial of 8 to 12 weeks and an LDN maximum of 4.5 mg; the patient-view cards of
CDS Hooks are built from these answers.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from ldncare.core.naltrexone import consider_ldn, low_dose_mg, reviews_due
from ldncare.core.screening import screen
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.planning import context_for

TODAY = date(2026, 3, 1)
EVIDENCE = load_evidence()


def context(*medications: dict[str, Any], conditions: tuple[str, ...] = ("Pudendal neuralgia",),
            **extra: Any) -> Any:  # fmt: skip
    data = {"id": "p", "birth_date": "1980-01-01", "sex": "female",
            "conditions": [{"name": c} for c in conditions], "medications": list(medications),
            **extra}  # fmt: skip
    return context_for(patient_from_data(data), TODAY)


def started(name: str, weeks: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "start": (TODAY - timedelta(weeks=weeks)).isoformat(), **extra}


def test_the_trial_and_maximum_these_vignettes_rely_on() -> None:
    assert (EVIDENCE.ldn.trial_weeks.min, EVIDENCE.ldn.trial_weeks.max) == (8, 12)
    assert str(EVIDENCE.ldn.max_daily_dose) == "4.5 mg"


def test_ldn_started_ten_weeks_ago_is_due_for_review() -> None:
    [due] = reviews_due(context(started("naltrexone 4.5 mg capsule", 10)), EVIDENCE)
    assert (str(due.mg), due.weeks, due.start) == ("4.5", 10, TODAY - timedelta(weeks=10))


@pytest.mark.parametrize(
    ("medication", "why"),
    [
        (started("naltrexone 4.5 mg capsule", 7), "under the shortest trial"),
        (started("naltrexone 50 mg tablet", 20), "full dose: not LDN"),
        (started("naltrexone capsule", 20), "no dose: LDN cannot be told from 50 mg"),
        ({"name": "naltrexone 1.5 mg capsule"}, "no start date"),
        (started("naltrexone 3 mg capsule", 20, status="stopped"), "not active"),
    ],
)
def test_no_review_due(medication: dict[str, Any], why: str) -> None:
    assert reviews_due(context(medication), EVIDENCE) == [], why


def test_low_dose_reads_the_dose_text_before_the_name() -> None:
    ctx = context({"name": "naltrexone 50 mg tablet", "dose": "1.5 mg"})
    assert str(low_dose_mg(ctx.patient.medications[0], EVIDENCE)) == "1.5"


def test_consider_ldn_for_pudendal_neuralgia_without_contraindication() -> None:
    ctx = context()
    basis = consider_ldn(ctx, tuple(screen(ctx, EVIDENCE)))
    assert [f.rule for f in basis] == ["ldn.offlabel"]


def test_consider_ldn_names_the_cautions_as_its_basis() -> None:
    ctx = context(labs=[{"test": "egfr", "value": 42, "unit": "mL/min/1.73m2",
                         "date": "2026-02-01"}])  # fmt: skip
    basis = consider_ldn(ctx, tuple(screen(ctx, EVIDENCE)))
    assert basis and all(f.severity == "warning" for f in basis)
    assert "ldn.renal.impairment" in [f.rule for f in basis]


@pytest.mark.parametrize(
    ("ctx_args", "why"),
    [
        (({"name": "oxycodone 5 mg tablet"},), "an active opioid contraindicates it"),
        ((started("naltrexone 4.5 mg capsule", 2),), "already on naltrexone"),
    ],
)
def test_no_suggestion(ctx_args: tuple[dict[str, Any], ...], why: str) -> None:
    ctx = context(*ctx_args)
    assert consider_ldn(ctx, tuple(screen(ctx, EVIDENCE))) == (), why


def test_no_suggestion_without_pudendal_neuralgia() -> None:
    ctx = context(conditions=("Essential hypertension",))
    assert consider_ldn(ctx, tuple(screen(ctx, EVIDENCE))) == ()


def test_naltrexone_recorded_only_by_its_rxnorm_code_is_on_the_chart() -> None:
    coded = {"name": "pharmacy item 4411", "rxnorm": "7243", "dose": "4.5 mg at night"}
    ctx = context({**started("x", 10), **coded})
    [due] = reviews_due(ctx, EVIDENCE)
    assert (str(due.mg), due.weeks) == ("4.5", 10)
    assert consider_ldn(ctx, screen(ctx, EVIDENCE)) == (), "already on LDN: do not suggest it"
