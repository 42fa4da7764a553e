"""Real-sized Synthea bundles (written by others) through ``ldncare plan``.

The CDC opioid value set is the independent oracle: an *active* prescription whose RxNorm code
is in it must make LDN not recommended; a stopped or completed one must not.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.evidence.loader import load_evidence
from ldncare.fhir.patient_bundle import patient_from_bundle
from ldncare.planning import make_plan
from tests.shared_data import CDC_TERMINOLOGY, SYNTHEA_PATIENTS, synthea_bundles

AS_OF = date(2026, 11, 25)
BUNDLES = synthea_bundles()
OPIOID_ANALGESICS = "http://fhir.org/guides/cdc/opioid-cds/ValueSet/opioid-analgesics-with-ambulatory-misuse-potential"


@cache
def cdc_opioid_codes() -> frozenset[str]:
    bundle = json.loads(CDC_TERMINOLOGY.read_text())
    codes: set[str] = set()
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res.get("resourceType") == "ValueSet" and res.get("url") == OPIOID_ANALGESICS:
            for inc in res.get("compose", {}).get("include", []):
                codes |= {c["code"] for c in inc.get("concept", [])}
            for c in res.get("expansion", {}).get("contains", []):
                codes.add(c["code"])
    assert len(codes) > 1000, "the value set should hold over a thousand RxNorm codes"
    return frozenset(codes)


def med_requests(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]


def is_cdc_opioid(mr: dict[str, Any]) -> bool:
    codings = mr.get("medicationCodeableConcept", {}).get("coding", [])
    return any(c.get("code") in cdc_opioid_codes() for c in codings)


def contract_for(bundle: dict[str, Any]) -> dict[str, Any]:
    plan = make_plan(patient_from_bundle(bundle), as_of=AS_OF)
    return plan.to_contract(load_evidence())


def rules(contract: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in contract["ldn"]["findings"]}


def test_there_are_synthea_bundles_to_test() -> None:
    assert len(BUNDLES) == SYNTHEA_PATIENTS


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name[:24])
def test_every_synthea_bundle_plans_and_active_cdc_opioids_decide_eligibility(
    path: Path,
) -> None:
    bundle = json.loads(path.read_text())
    contract = contract_for(bundle)
    active_opioid = any(
        is_cdc_opioid(mr) and mr.get("status") == "active" for mr in med_requests(bundle)
    )
    if active_opioid:
        assert contract["ldn"]["eligibility"] == "not_recommended"
        assert "ldn.opioid.active" in rules(contract)
    else:
        assert "ldn.opioid.active" not in rules(contract)
    if any(is_cdc_opioid(mr) and mr.get("status") != "active" for mr in med_requests(bundle)):
        # Issue 14: an ended opioid without an end date is reported with its assumed stop date
        # (or as undated), not as plain history.
        assert rules(contract) & {
            "ldn.opioid.history",
            "ldn.opioid.washout",
            "ldn.opioid.washout_assumed",
            "ldn.opioid.stop_assumed",
            "ldn.opioid.stop_unknown",
        }


def _bundle_with_opioid() -> tuple[dict[str, Any], int]:
    for path in BUNDLES:
        bundle = json.loads(path.read_text())
        for i, entry in enumerate(bundle["entry"]):
            res = entry["resource"]
            if res["resourceType"] == "MedicationRequest" and is_cdc_opioid(res):
                return bundle, i
    raise AssertionError("no Synthea bundle carries a CDC opioid")


@pytest.mark.parametrize(
    ("status", "expect_active"),
    [("active", True), ("on-hold", True), ("stopped", False), ("completed", False)],
)
def test_the_status_of_one_opioid_prescription_decides(status: str, expect_active: bool) -> None:
    original, index = _bundle_with_opioid()
    bundle = copy.deepcopy(original)
    # Make every other opioid inactive so the one under test decides alone.
    for i, entry in enumerate(bundle["entry"]):
        res = entry["resource"]
        if res["resourceType"] == "MedicationRequest" and is_cdc_opioid(res):
            res["status"] = status if i == index else "completed"
    contract = contract_for(bundle)
    assert ("ldn.opioid.active" in rules(contract)) is expect_active
    if expect_active:
        assert contract["ldn"]["eligibility"] == "not_recommended"


@pytest.mark.parametrize("path", BUNDLES[:3], ids=lambda p: p.name[:24])
def test_cli_plan_runs_on_synthea_bundles_in_every_format(path: Path) -> None:
    runner = CliRunner()
    for fmt in ("md", "html", "json"):
        result = runner.invoke(app, ["plan", str(path), "--format", fmt, "--as-of", "2026-11-25"])
        assert result.exit_code == 0, result.output
    data = json.loads(
        runner.invoke(app, ["plan", str(path), "-f", "json", "--as-of", "2026-11-25"]).stdout
    )
    assert data["schema"] == "ldncare.plan/1"
