"""Invariant: every diary day ldncare exports as FHIR comes back from the Observation exactly as
it was, so a re-imported diary is judged the same (issue #17, item 2)."""

from __future__ import annotations

import functools
from datetime import date, time
from decimal import Decimal
from importlib import resources
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.diary import SEVERITIES, SIDE_EFFECT_KINDS, DiaryEntry, SideEffect
from ldncare.evidence.loader import load_evidence
from ldncare.fhir.export import plan_to_bundle, validate_bundle
from ldncare.fhir.tags import diary_entries
from ldncare.patient_file import patient_from_data
from ldncare.planning import make_plan

_pain = st.none() | st.integers(0, 10)
_effects = st.lists(
    st.builds(
        SideEffect,
        effect=st.sampled_from([k for k in SIDE_EFFECT_KINDS if k != "other"]),
        severity=st.sampled_from(SEVERITIES),
        note=st.none() | st.text(max_size=40),
    ),
    max_size=4,
    unique_by=lambda s: s.effect,
)
_dose = st.none() | st.decimals(
    Decimal("0.001"), Decimal("50"), places=3, allow_nan=False, allow_infinity=False
)


@st.composite
def diary_days(draw: st.DrawFn) -> DiaryEntry:
    avg, worst = draw(_pain), draw(_pain)
    if avg is not None and worst is not None and worst < avg:
        avg, worst = worst, avg
    dose = draw(_dose)
    taken = draw(st.none() | st.booleans())
    if taken is False:
        dose = None
    fields: dict[str, Any] = {
        "day": draw(st.dates(date(2000, 1, 1), date(2030, 12, 31))),
        "pain_avg": avg,
        "pain_worst": worst,
        "sitting_minutes": draw(st.none() | st.integers(0, 1440)),
        "sleep_quality": draw(st.none() | st.integers(0, 10)),
        "side_effects": tuple(draw(_effects)),
        "dose_taken": taken,
        "dose_mg": dose,
        "dose_time": draw(st.none() | st.times().map(lambda t: time(t.hour, t.minute))),
        "pgic": draw(st.none() | st.integers(1, 7)),
        "notes": draw(st.none() | st.text(min_size=1, max_size=60).filter(str.strip)),
    }
    return DiaryEntry.model_validate(fields)


@functools.cache
def _contract() -> dict[str, Any]:
    """A whole plan (the export reads the typed plan/1 contract): the shipped example patient's."""
    example = resources.files("ldncare.examples") / "pn-example.yaml"
    patient = patient_from_data(yaml.safe_load(example.read_text("utf-8")))
    return make_plan(patient, as_of=date(2026, 12, 1)).to_contract(load_evidence())


@settings(max_examples=150, deadline=None)
@given(st.lists(diary_days(), max_size=5, unique_by=lambda d: d.day))
def test_every_exported_diary_day_reads_back_identical(days: list[DiaryEntry]) -> None:
    bundle = plan_to_bundle(_contract(), patient_ref="Patient/pn-1", diary=days)
    observations = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    back = [d for o in observations for d in diary_entries(o)]
    recorded = [d for d in days if d != DiaryEntry(day=d.day)]
    # Nothing lost, nothing changed, nothing added: a day with nothing recorded is not sent.
    assert back == sorted(recorded, key=lambda d: d.day)
    assert not [p for p in validate_bundle(bundle) if "Observation" in p]
