"""The typed ``ldncare.plan/1`` contract: every plan ldncare writes parses, and nothing else.

The model (``core/plan_contract.py``) forbids unknown keys, so a field a builder starts to emit
without modelling it fails here; each plan is also dumped back from the model and compared to
the builder's JSON text, so the model cannot drop, reorder or retype a field either.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.plan_contract import PlanContract, plan_json_schema_text, read_plan
from ldncare.core.response import assess_response
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from ldncare.store import repository
from ldncare.store.db import open_engine
from ldncare.web.demo import load_demo

ROOT = Path(__file__).resolve().parents[2]
VIGNETTES = sorted((ROOT / "tests" / "vignettes" / "patients").glob("*.yaml"))
EXAMPLE = ROOT / "src" / "ldncare" / "examples" / "pn-example.yaml"
AS_OF = date(2026, 11, 25)
#: The Nantes checklist with nothing answered yet still joins the plan (status incomplete).
NANTES_ALL_UNANSWERED: dict[str, bool | None] = {}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@cache
def vignette_plan(name: str, with_nantes: bool = False) -> dict[str, Any]:
    path = EXAMPLE if name == EXAMPLE.name else VIGNETTES[[p.name for p in VIGNETTES].index(name)]
    nantes = NANTES_ALL_UNANSWERED if with_nantes else None
    plan = make_plan(load_patient(path), as_of=AS_OF, nantes=nantes)
    result: dict[str, Any] = json.loads(_json(plan.to_contract(load_evidence())))
    return result


def assert_model_matches(contract: dict[str, Any]) -> PlanContract:
    """The contract parses, and the model dumps back the very same JSON text."""
    model = read_plan(contract)
    back = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert _json(back) == _json(contract)
    return model


# --- the published schema -------------------------------------------------------------------


def test_committed_json_schema_is_generated_from_the_model() -> None:
    committed = (ROOT / "docs" / "plan-contract.schema.json").read_text(encoding="utf-8")
    assert committed == plan_json_schema_text(), (
        "docs/plan-contract.schema.json differs from the model: run "
        "scripts/plan_contract_schema.py and commit the file"
    )


def test_schema_names_the_version_and_forbids_unknown_keys() -> None:
    schema = json.loads(plan_json_schema_text())
    assert schema["title"] == "ldncare.plan/1"
    assert schema["properties"]["schema"]["const"] == "ldncare.plan/1"
    assert schema["additionalProperties"] is False
    assert all(
        d.get("additionalProperties") is False
        for d in schema["$defs"].values()
        if d.get("type") == "object"
    )


# --- the README example ---------------------------------------------------------------------


def readme_example() -> dict[str, Any]:
    """The README's ``jsonc`` plan, read as JSON: comments dropped, the first of each
    ``a | b`` alternative kept, ``[...]`` read as an empty list."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    heading = readme.index("## The plan contract (`ldncare.plan/1`)")
    match = re.search(r"```jsonc\n(.*?)```", readme[heading:], re.S)
    assert match is not None, "the README's plan example is missing"
    lines = [re.sub(r"(?<!:)//.*$", "", line) for line in match.group(1).splitlines()]
    text = "\n".join(lines)
    value = r'(?:"[^"]*"|null|true|false|-?\d+(?:\.\d+)?|\{[^{}]*\})'
    text = re.sub(rf"({value})(?:\s*\|\s*{value})+", r"\1", text)
    text = text.replace("[...]", "[]")
    result: dict[str, Any] = json.loads(text)
    return result


def test_readme_plan_example_is_a_valid_plan() -> None:
    example = readme_example()
    model = read_plan(example)
    assert model.ldn.eligibility == "eligible"
    assert model.ldn.course is not None and model.ldn.course.kind == "new"
    assert model.ldn.schedule[0].dose.unit == "mg"
    assert model.evidence is not None and model.evidence.version == "2026.12.1"


def test_readme_example_names_every_top_level_and_ldn_field() -> None:
    """The README documents every field of the model except the optional extras."""
    example = readme_example()
    extras = {"nantes", "response"}
    assert set(example) == {f.alias or n for n, f in PlanContract.model_fields.items()} - extras
    assert set(example["ldn"]) == set(PlanContract.model_fields["ldn"].annotation.model_fields)  # type: ignore[union-attr]


# --- every plan ldncare makes ---------------------------------------------------------------


@pytest.mark.parametrize("name", [p.name for p in VIGNETTES] + [EXAMPLE.name])
def test_every_vignette_plan_is_a_valid_plan(name: str) -> None:
    assert_model_matches(vignette_plan(name))


def test_a_plan_with_the_nantes_checklist_is_a_valid_plan() -> None:
    model = assert_model_matches(vignette_plan(EXAMPLE.name, with_nantes=True))
    assert model.nantes is not None and model.nantes.status == "incomplete"


def test_demo_patients_stored_plans_and_reviews_are_valid_plans(tmp_path: Path) -> None:
    """The demo's stored plans, and ``ldncare review --format json`` (plan + response)."""
    today = date(2026, 6, 1)
    engine = open_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    load_demo(engine, today=today)
    statuses = set()
    for row in repository.list_patients(engine, actor="t"):
        for plan in repository.list_plans(engine, row.external_id, actor="t"):
            assert_model_matches(dict(plan.contract))
        latest = repository.latest_plan(engine, row.external_id, actor="t")
        assert latest is not None
        diary = repository.list_diary(engine, row.external_id, actor="t")
        if latest.contract["ldn"]["schedule"]:
            assessment = assess_response(
                diary, latest.contract, today=today, evidence=load_evidence()
            )
            reviewed = dict(latest.contract) | {"response": assessment.to_contract()}
            model = assert_model_matches(json.loads(_json(reviewed)))
            assert model.response is not None
            statuses.add(model.response.status)
    assert {"responder_substantial", "non_responder"} <= statuses


# --- what the model refuses, what older plans may lack --------------------------------------


def test_a_plan_stored_before_the_later_plan1_fields_still_parses() -> None:
    """Fields added within plan/1 (evidence, course, an option reason's rationale, the
    citation's fit) are optional: a plan stored before them reads with the defaults."""
    old = json.loads(_json(vignette_plan("pn-ldn-3mg-plus-tramadol-prn.yaml")))
    del old["evidence"]
    del old["ldn"]["course"]
    for c in old["citations"]:
        del c["population"], c["size"]
    for o in old["options"]:
        for r in o["reasons"]:
            del r["rationale"]
    model = read_plan(old)
    assert model.evidence is None and model.ldn.course is None
    assert all(c.population is None for c in model.citations)
    assert all(r.rationale == "" for o in model.options for r in o.reasons)


@pytest.mark.parametrize("field", ["notes", "findings", "schedule", "citations"])
def test_a_plan_missing_a_first_release_ldn_field_is_refused_with_the_field(field: str) -> None:
    broken = json.loads(_json(vignette_plan("pn-example.yaml")))
    del broken["ldn"][field]
    with pytest.raises(InvalidInput) as info:
        read_plan(broken)
    assert info.value.field == f"ldn.{field}"


def test_a_plan_without_a_schema_id_is_refused_with_the_field() -> None:
    contract = dict(vignette_plan("pn-example.yaml"))
    del contract["schema"]
    with pytest.raises(InvalidInput) as info:
        read_plan(contract)
    assert info.value.field == "schema"


def test_a_future_schema_version_is_refused() -> None:
    contract = dict(vignette_plan("pn-example.yaml")) | {"schema": "ldncare.plan/2"}
    with pytest.raises(InvalidInput, match=r"should be .ldncare\.plan/1."):
        read_plan(contract)


def test_a_dose_without_its_unit_is_refused() -> None:
    contract = json.loads(_json(vignette_plan("pn-example.yaml")))
    contract["ldn"]["schedule"][0]["dose"] = {"value": 1.5}
    with pytest.raises(InvalidInput) as info:
        read_plan(contract)
    assert info.value.field == "ldn.schedule.0.dose.unit"


_KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
_PLACES = (
    "",
    "ldn",
    "ldn.course",
    "patient",
    "ldn.schedule.0",
    "ldn.findings.0",
    "options.0",
    "options.0.reasons.0",
    "citations.0",
    "care.0",
    "guidance.key_considerations.0",
)


@settings(max_examples=60, deadline=None)
@given(key=_KEY, place=st.sampled_from(_PLACES), value=st.integers() | st.text(max_size=5))
def test_an_unmodelled_field_cannot_slip_into_a_plan(key: str, place: str, value: object) -> None:
    """Safety invariant: any key the model does not know, anywhere, is refused by name."""
    contract = json.loads(_json(vignette_plan("pn-ldn-1.5mg-frail-78.yaml")))
    target: Any = contract
    for part in filter(None, place.split(".")):
        target = target[int(part)] if part.isdigit() else target[part]
    if key in target:
        return  # an existing field: not the case under test
    target[key] = value
    with pytest.raises(InvalidInput) as info:
        read_plan(contract)
    assert info.value.field == ".".join(filter(None, (place, key)))


def test_read_plan_passes_a_parsed_model_through() -> None:
    model = read_plan(vignette_plan("pn-example.yaml"))
    assert read_plan(model) is model
    assert model.first_dose == model.ldn.schedule[0].start_date
