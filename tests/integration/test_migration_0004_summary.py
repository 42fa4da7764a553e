"""Migration 0004 backfills plan summaries with its own copy of the summary rule (a migration
must not import live code that may change later); today the copy and the live rule agree."""

from __future__ import annotations

import copy
import importlib.util
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ldncare.store.migrations as migrations
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from ldncare.store.repository import plan_summary_values

AS_OF = date(2026, 11, 25)
VIGNETTES = sorted((Path(__file__).parents[1] / "vignettes" / "patients").glob("*.yaml"))


def _migration() -> ModuleType:
    path = Path(migrations.__file__).parent / "versions" / "0004_plan_summary.py"
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MIGRATION = _migration()


def _contracts() -> list[dict[str, Any]]:
    evidence = load_evidence()
    return [
        make_plan(load_patient(p), as_of=AS_OF, start=date(2026, 12, 1)).to_contract(evidence)
        for p in VIGNETTES
    ]


CONTRACTS = _contracts()


@pytest.mark.parametrize("i", range(len(VIGNETTES)), ids=[p.stem for p in VIGNETTES])
def test_each_vignette_plan_is_summarised_by_the_migration_as_by_the_repository(i: int) -> None:
    assert MIGRATION._summary(CONTRACTS[i]) == plan_summary_values(CONTRACTS[i])


def test_the_vignettes_cover_eligible_and_not_recommended_plans_with_opioids() -> None:
    summaries = [plan_summary_values(c) for c in CONTRACTS]
    assert {s["eligibility"] for s in summaries if s} >= {"eligible", "not_recommended"}
    assert any(s and s["opioid_on_record"] for s in summaries)
    assert any(s and s["first_dose"] for s in summaries)


_DAMAGE = st.sampled_from(
    [None, "", "not a date", "2026-02-30", 3, 4.5, float("nan"), True, [], {}, "1,5", "inf"]
)
_WHERE = st.sampled_from(
    ["review_date", "target_reached", "eligibility", "findings", "schedule", "step.start_date",
     "step.end_date", "step.dose_mg", "step", "ldn"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.integers(0, len(VIGNETTES) - 1), st.lists(st.tuples(_WHERE, _DAMAGE), max_size=3))
def test_a_damaged_contract_never_breaks_the_migration_and_agrees_where_summarised(
    i: int, damage: list[tuple[str, Any]]
) -> None:
    contract = copy.deepcopy(CONTRACTS[i])
    for where, value in damage:
        ldn = contract.get("ldn")
        if where == "ldn":
            contract["ldn"] = value
        elif not isinstance(ldn, dict):
            continue
        elif where.startswith("step"):
            schedule = ldn.get("schedule")
            if isinstance(schedule, list) and schedule:
                if where == "step":
                    schedule[0] = value
                elif isinstance(schedule[0], dict):
                    schedule[0][where.removeprefix("step.")] = value
        else:
            ldn[where] = value
    # The migration's copy is frozen as the rule was at 0004; the live rule has moved since (the
    # typed plan contract reads the LDN part whole, refusing some damage the copy let through
    # and accepting some it refused). So: the migration never raises on a damaged contract, and
    # wherever both summarise, they agree.
    frozen = MIGRATION._summary(contract)
    live = plan_summary_values(contract)
    if frozen is not None and live is not None:
        assert frozen == live
