"""Named clinical vignettes for LDN screening and planning.

Each patient file under ``patients/`` is a short clinical story; the test states what a careful
clinician expects ldncare to conclude, and why (the rule that must fire).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan

HERE = Path(__file__).parent / "patients"
AS_OF = date(2026, 11, 25)


def plan_for(name: str, **kwargs: Any) -> dict[str, Any]:
    patient = load_patient(HERE / name)
    return make_plan(patient, as_of=AS_OF, **kwargs).to_contract(load_evidence())


def rules(contract: dict[str, Any], severity: str | None = None) -> set[str]:
    return {
        f["rule"]
        for f in contract["ldn"]["findings"]
        if severity is None or f["severity"] == severity
    }


def assert_schedule_within_limits(contract: dict[str, Any]) -> None:
    steps = contract["ldn"]["schedule"]
    assert steps, "an eligible patient gets a schedule"
    assert 1 <= steps[0]["dose_mg"] <= 2, "start 1-2 mg"
    assert all(s["dose_mg"] <= 4.5 for s in steps), "never above 4.5 mg"
    assert all(s["time_of_day"] == "bedtime" for s in steps)
    review = date.fromisoformat(contract["ldn"]["review_date"])
    target = date.fromisoformat(contract["ldn"]["target_reached"])
    assert target == date.fromisoformat(steps[-1]["start_date"])
    assert 8 * 7 <= (review - target).days <= 12 * 7, "review 2-3 months after the target"


def test_woman_with_pn_on_no_other_drugs_is_eligible() -> None:
    plan = plan_for("pn-woman-no-meds.yaml")
    assert plan["ldn"]["eligibility"] == "eligible"
    assert {"ldn.indication.pn", "ldn.offlabel"} <= rules(plan)
    assert_schedule_within_limits(plan)


def test_tramadol_makes_ldn_not_recommended() -> None:
    plan = plan_for("pn-on-tramadol.yaml")
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert "ldn.opioid.active" in rules(plan, "contraindication")
    assert plan["ldn"]["schedule"] == []
    assert any("Tramadol" in f["message"] for f in plan["ldn"]["findings"])


def test_oxycodone_course_finished_a_year_ago_is_history_not_a_conflict() -> None:
    plan = plan_for("pn-oxycodone-last-year.yaml")
    assert plan["ldn"]["eligibility"] == "eligible"
    assert "ldn.opioid.history" in rules(plan, "info")
    assert "ldn.opioid.active" not in rules(plan)
    assert_schedule_within_limits(plan)


def test_oxycodone_stopped_five_days_ago_must_wait_for_washout() -> None:
    # The wait is the only contraindication: a deferred start on the first opioid-free day
    # (review item 8), with the washout finding kept.
    plan = plan_for("pn-oxycodone-stopped-5-days.yaml")
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"
    washout = [f for f in plan["ldn"]["findings"] if f["rule"] == "ldn.opioid.washout"]
    assert washout and "2026-11-20" in washout[0]["message"]
    assert washout[0]["severity"] == "contraindication"
    assert "earliest start 2026-11-30" in washout[0]["message"]
    assert plan["ldn"]["schedule"][0]["start_date"] == "2026-11-30"
    assert "schedule.washout_deferred" in rules(plan, "warning")


def test_cirrhosis_calls_for_caution() -> None:
    plan = plan_for("pn-cirrhosis.yaml")
    assert plan["ldn"]["eligibility"] in {"eligible_with_cautions", "not_recommended"}
    assert "ldn.hepatic.impairment" in rules(plan)


def test_raised_alt_is_flagged_against_the_lab_upper_limit() -> None:
    plan = plan_for("pn-raised-alt.yaml")
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"
    enzyme = [f for f in plan["ldn"]["findings"] if f["rule"] == "ldn.hepatic.enzymes"]
    assert len(enzyme) == 1, "ALT is raised, AST is not"
    assert "88" in enzyme[0]["message"]


def test_pregnancy_is_a_caution_with_insufficient_data() -> None:
    plan = plan_for("pn-pregnant.yaml")
    assert "ldn.pregnancy" in rules(plan)
    assert plan["ldn"]["eligibility"] != "eligible"


def test_breastfeeding_is_flagged() -> None:
    assert "ldn.breastfeeding" in rules(plan_for("pn-breastfeeding.yaml"))


def test_levothyroxine_and_hashimoto_are_flagged() -> None:
    plan = plan_for("pn-levothyroxine.yaml")
    assert {"ldn.thyroid.levothyroxine", "ldn.thyroid.autoimmune"} <= rules(plan)
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"


def test_buprenorphine_naloxone_for_oud_is_a_contraindication() -> None:
    plan = plan_for("pn-buprenorphine-oud.yaml")
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert "ldn.opioid.active" in rules(plan)
    assert "ldn.oud.diagnosis" in rules(plan)


def test_methadone_is_a_contraindication() -> None:
    assert plan_for("pn-methadone.yaml")["ldn"]["eligibility"] == "not_recommended"


def test_codeine_cough_syrup_is_an_opioid() -> None:
    plan = plan_for("pn-codeine-cough.yaml")
    assert "ldn.opioid.active" in rules(plan)


def test_fentanyl_patch_brand_name_is_an_opioid() -> None:
    assert "ldn.opioid.active" in rules(plan_for("pn-fentanyl-patch.yaml"))


def test_planned_surgery_needing_opioids_is_a_caution() -> None:
    plan = plan_for("pn-planned-surgery.yaml")
    assert "ldn.surgery.planned" in rules(plan, "warning")
    assert any("2027-01-15" in f["message"] for f in plan["ldn"]["findings"])


def test_older_frail_patient_gets_age_and_frailty_findings() -> None:
    plan = plan_for("pn-age-78-frail.yaml")
    assert {"ldn.age.older", "ldn.frailty"} <= rules(plan)


def test_patient_without_neuropathic_pain_is_still_screened() -> None:
    plan = plan_for("no-indication.yaml")
    assert "ldn.indication.not_recorded" in rules(plan, "info")
    assert plan["ldn"]["findings"], "screened all the same"


def test_reduced_egfr_is_flagged() -> None:
    assert "ldn.renal.impairment" in rules(plan_for("pn-ckd-egfr-42.yaml"))


def test_immunosuppressant_is_flagged() -> None:
    assert "ldn.immunosuppressant" in rules(plan_for("pn-tacrolimus.yaml"))


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.glob("*.yaml")))
def test_every_finding_has_a_rule_rationale_and_citation(name: str) -> None:
    plan = plan_for(name)
    known = {c["id"] for c in plan["citations"]}
    for f in plan["ldn"]["findings"]:
        assert f["rule"] and f["message"] and f["rationale"]
        assert f["citations"], f["rule"]
        assert set(f["citations"]) <= known
        assert "{" not in f["message"], f"unfilled placeholder in {f['rule']}"
