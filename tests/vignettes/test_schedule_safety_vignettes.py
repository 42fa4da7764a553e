"""Issue #14, the LDN schedule part: named vignettes in both forms, and the invariants.

Every vignette is a patient file under ``patients/``; the same patient is also turned into a
FHIR R4 Bundle (Patient with ldncare's extensions, Condition, MedicationStatement with its
dosage text, eGFR Observation by LOINC) and planned through ``make_plan`` and the CLI ``plan``
command. A careful clinician's expectations:

- naltrexone already on record: 50 mg (by name or RxNorm code) -> no LDN start, and why; LDN ->
  continue from the current dose, never step 1 again; no readable dose -> no schedule, confirm;
- "start low" advice (frailty, older age, reduced kidney or liver function) -> the schedule
  starts low and climbs more slowly, and says why; the clinician's own choice wins;
- the review is 8 weeks (the default) after the target dose is reached, everywhere;
- planned surgery before the review -> the first dose comes after the operation plus the
  opioid-free interval; no step runs through the operation;
- kidney messages print the unit once, and a CKD stage without an eGFR reads plainly.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.core.quantity import parse_dose
from ldncare.core.titration import TitrationOptions
from ldncare.evidence.loader import load_evidence
from ldncare.fhir import patient_from_bundle
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan

HERE = Path(__file__).parent / "patients"
AS_OF = date(2026, 11, 25)
EVIDENCE = load_evidence()
EXT = "https://ldncare.org/fhir/StructureDefinition"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = {"egfr": "33914-3", "alt": "1742-6"}  # as mapped in ldncare.fhir.patient_bundle
runner = CliRunner()


# -- the two forms ----------------------------------------------------------------------------
def as_bundle(data: dict[str, Any]) -> dict[str, Any]:
    """The patient file ``data`` as a FHIR R4 collection Bundle."""
    pid = data["id"]
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "gender": data["sex"],
        "birthDate": str(data["birth_date"]),
    }
    ext = []
    if data.get("planned_surgery"):
        ext.append({"url": f"{EXT}/planned-surgery", "valueDate": str(data["planned_surgery"])})
    if data.get("frail"):
        ext.append({"url": f"{EXT}/frail", "valueBoolean": True})
    if ext:
        patient["extension"] = ext
    resources: list[dict[str, Any]] = [patient]
    subject = {"reference": f"Patient/{pid}"}
    for i, cond in enumerate(data.get("conditions", [])):
        resources.append(
            {
                "resourceType": "Condition",
                "id": f"c{i}",
                "subject": subject,
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"text": cond["name"]},
            }
        )
    for i, med in enumerate(data.get("medications", [])):
        concept: dict[str, Any] = {"text": med["name"]}
        if med.get("rxnorm"):
            concept["coding"] = [{"system": RXNORM, "code": med["rxnorm"]}]
        statement: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "id": f"m{i}",
            "subject": subject,
            "status": med.get("status", "active"),
            "medicationCodeableConcept": concept,
        }
        if med.get("start"):
            statement["effectivePeriod"] = {"start": str(med["start"])}
        if med.get("dose"):
            statement["dosage"] = [{"text": med["dose"]}]
        resources.append(statement)
    for i, lab in enumerate(data.get("labs", [])):
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"o{i}",
            "status": "final",
            "subject": subject,
            "code": {"coding": [{"system": "http://loinc.org", "code": LOINC[lab["test"]]}]},
            "effectiveDateTime": str(lab["date"]),
            "valueQuantity": {"value": lab["value"], "unit": lab["unit"]},
        }
        if lab.get("upper_limit") is not None:
            observation["referenceRange"] = [{"high": {"value": lab["upper_limit"]}}]
        resources.append(observation)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


FORMS = ("patient-file", "fhir")


def plan_for(name: str, form: str = "patient-file", **options: Any) -> dict[str, Any]:
    path = HERE / name
    if form == "patient-file":
        patient = load_patient(path)
    else:
        patient = patient_from_bundle(as_bundle(yaml.safe_load(path.read_text())))
    titration = TitrationOptions(start=AS_OF, **options) if options else None
    return make_plan(patient, as_of=AS_OF, titration=titration).to_contract(EVIDENCE)


def cli_plan(name: str, form: str, tmp_path: Path) -> dict[str, Any]:
    path = HERE / name
    if form == "fhir":
        path = tmp_path / f"{name}.json"
        data = yaml.safe_load((HERE / name).read_text())
        path.write_text(json.dumps(as_bundle(data)))
    result = runner.invoke(app, ["plan", str(path), "-f", "json", "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.stderr
    contract: dict[str, Any] = json.loads(result.stdout)
    return contract


def rules(plan: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in plan["ldn"]["findings"]}


def message(plan: dict[str, Any], rule: str) -> str:
    [text] = [f["message"] for f in plan["ldn"]["findings"] if f["rule"] == rule]
    return str(text)


def steps(plan: dict[str, Any]) -> list[tuple[date, date, float]]:
    return [
        (date.fromisoformat(s["start_date"]), date.fromisoformat(s["end_date"]), s["dose_mg"])
        for s in plan["ldn"]["schedule"]
    ]


def assert_review_rule(plan: dict[str, Any], weeks: int = 8) -> None:
    ldn = plan["ldn"]
    target = date.fromisoformat(ldn["target_reached"])
    review = date.fromisoformat(ldn["review_date"])
    first = date.fromisoformat(ldn["schedule"][0]["start_date"])
    assert review == max(target + timedelta(weeks=weeks), first)
    assert ldn["schedule"][-1]["end_date"] == ldn["review_date"]


# -- 1. already on naltrexone -----------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    "name", ["pn-naltrexone-50mg-alcohol.yaml", "pn-naltrexone-rxnorm-50mg.yaml"]
)
def test_naltrexone_50_mg_for_alcohol_by_name_or_code_gets_no_ldn_start(
    name: str, form: str
) -> None:
    plan = plan_for(name, form)
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert plan["ldn"]["schedule"] == [] and plan["ldn"]["review_date"] is None
    text = message(plan, "ldn.naltrexone.full_dose")
    assert "50 mg" in text and "4.5 mg" in text and "Do not start LDN" in text
    assert plan["ldn"]["course"]["kind"] == "not_started"


@pytest.mark.parametrize("form", FORMS)
def test_ldn_3_mg_since_october_continues_at_3_mg_and_steps_up_to_the_target(form: str) -> None:
    plan = plan_for("pn-ldn-3mg-since-october.yaml", form)
    assert plan["ldn"]["course"]["kind"] == "continue"
    assert plan["ldn"]["course"]["current_dose"] == {"value": 3.0, "unit": "mg"}
    assert [dose for _, _, dose in steps(plan)] == [3.0, 4.0, 4.5], "no restart at 1.5 mg"
    assert steps(plan)[0][0] == AS_OF
    assert "since 2026-10-01" in message(plan, "ldn.naltrexone.ldn_current")
    assert "ldn.naltrexone.current" not in rules(plan)
    assert_review_rule(plan)


@pytest.mark.parametrize("form", FORMS)
def test_ldn_4_5_mg_for_a_year_is_continue_and_review_now_not_a_new_titration(form: str) -> None:
    plan = plan_for("pn-ldn-4.5mg-for-a-year.yaml", form)
    assert [dose for _, _, dose in steps(plan)] == [4.5]
    assert plan["ldn"]["target_reached"] == "2025-11-01"
    assert plan["ldn"]["review_date"] == AS_OF.isoformat(), "the trial at 4.5 mg has long run"
    assert any("review is due now" in n for n in plan["ldn"]["notes"])
    assert_review_rule(plan)


@pytest.mark.parametrize("form", FORMS)
def test_ldn_1_5_mg_started_last_week_carries_on_rather_than_restarting(form: str) -> None:
    plan = plan_for("pn-ldn-1.5mg-started-last-week.yaml", form)
    assert plan["ldn"]["course"]["kind"] == "continue"
    assert [dose for _, _, dose in steps(plan)] == [1.5, 2.5, 3.5, 4.5]
    assert_review_rule(plan)


def test_ldn_4_5_mg_with_a_lower_target_chosen_is_an_adjustment_down() -> None:
    plan = plan_for("pn-ldn-4.5mg-for-a-year.yaml", target_dose=parse_dose("3 mg"))
    assert plan["ldn"]["course"]["kind"] == "adjust"
    assert [dose for _, _, dose in steps(plan)] == [3.0]
    assert plan["ldn"]["target_reached"] == AS_OF.isoformat()
    assert_review_rule(plan)


@pytest.mark.parametrize("form", FORMS)
def test_naltrexone_without_a_readable_dose_asks_for_it_and_gives_no_schedule(form: str) -> None:
    plan = plan_for("pn-naltrexone-dose-unknown.yaml", form)
    assert plan["ldn"]["course"]["kind"] == "withheld"
    assert plan["ldn"]["schedule"] == [] and plan["ldn"]["review_date"] is None
    assert "Confirm the dose" in message(plan, "ldn.naltrexone.dose_unknown")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("name", "kind", "first_dose"),
    [
        ("pn-naltrexone-50mg-alcohol.yaml", "not_started", None),
        ("pn-ldn-3mg-since-october.yaml", "continue", 3.0),
        ("pn-naltrexone-dose-unknown.yaml", "withheld", None),
    ],
)
def test_the_cli_plan_says_the_same(
    name: str, kind: str, first_dose: float | None, form: str, tmp_path: Path
) -> None:
    plan = cli_plan(name, form, tmp_path)
    assert plan["ldn"]["course"]["kind"] == kind
    doses = [s["dose_mg"] for s in plan["ldn"]["schedule"]]
    assert (doses[0] if doses else None) == first_dose


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("name", "status"),
    [("pn-ldn-4.5mg-ordered-not-started.yaml", "intended"), ("pn-ldn-3mg-on-hold.yaml", "on-hold")],
)
def test_ldn_ordered_or_on_hold_is_not_taken_so_the_titration_starts_low(
    name: str, status: str, form: str
) -> None:
    plan = plan_for(name, form)
    assert plan["ldn"]["course"]["kind"] == "new"
    assert steps(plan)[0][2] == 1.5, "never begins at the ordered dose of a drug not being taken"
    assert f"on record as {status}" in message(plan, "ldn.naltrexone.ldn_not_taken")
    assert_review_rule(plan)


# -- 2. start low -----------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pn-age-78-frail.yaml", "frailty"),
        ("pn-ckd-egfr-42.yaml", "reduced kidney function"),
        ("pn-ckd-stage-4-no-egfr.yaml", "chronic kidney disease"),
        ("pn-cirrhosis-age-50.yaml", "liver impairment"),
        ("pn-age-70-not-frail.yaml", "older age"),
    ],
)
def test_start_low_advice_gives_a_lower_start_and_a_slower_climb(
    name: str, reason: str, form: str
) -> None:
    plan = plan_for(name, form)
    doses = [dose for _, _, dose in steps(plan)]
    assert doses[0] == 1.0, "the low end of the cited 1-2 mg start range"
    assert doses[-1] == 4.5
    weeks = (date.fromisoformat(plan["ldn"]["target_reached"]) - AS_OF).days / 7
    assert 6 < weeks <= 8, "slower than the default 6 weeks, within the cited 4-8"
    text = message(plan, "schedule.start_low")
    assert reason in text and "1 mg" in text and "8 weeks" in text
    cited = {c["id"] for c in plan["citations"]}
    assert {"toljan2018", "nct04678895", "label_naltrexone"} <= cited
    assert_review_rule(plan)


@pytest.mark.parametrize("form", FORMS)
def test_a_younger_patient_with_no_caution_keeps_the_default_schedule(form: str) -> None:
    plan = plan_for("pn-woman-no-meds.yaml", form)
    assert [dose for _, _, dose in steps(plan)] == [1.5, 2.5, 3.5, 4.5]
    assert "schedule.start_low" not in rules(plan)


def test_the_clinicians_own_start_dose_and_step_length_win_for_a_frail_patient() -> None:
    plan = plan_for("pn-age-78-frail.yaml", start_dose=parse_dose("2 mg"), step_days=7)
    assert [dose for _, _, dose in steps(plan)][:2] == [2.0, 3.0]
    assert (steps(plan)[1][0] - steps(plan)[0][0]).days == 7
    assert "schedule.start_low" not in rules(plan)


def test_a_slow_titration_chosen_for_a_frail_patient_keeps_its_doubled_steps() -> None:
    plan = plan_for("pn-age-78-frail.yaml", slow=True)
    assert steps(plan)[0][2] == 1.0
    assert (steps(plan)[1][0] - steps(plan)[0][0]).days == 28


# -- 3. review date rule ------------------------------------------------------------------------
@pytest.mark.parametrize("weeks", [8, 10, 12])
def test_a_review_chosen_at_8_to_12_weeks_counts_from_the_target(weeks: int) -> None:
    plan = plan_for("pn-woman-no-meds.yaml", review_weeks=weeks)
    assert plan["ldn"]["target_reached"] == "2027-01-06"
    assert_review_rule(plan, weeks)


def test_the_trial_statement_care_text_and_ldn_yaml_agree_on_the_rule() -> None:
    trial = EVIDENCE.statements["ldn.trial.length"].text
    assert "counted once the target dose is reached" in trial and "8 to 12 weeks" in trial
    assert (EVIDENCE.ldn.trial_weeks.min, EVIDENCE.ldn.trial_weeks.max) == (8, 12)
    assert EVIDENCE.ldn.defaults.review_weeks == EVIDENCE.ldn.trial_weeks.min
    care = {c.id: c.text for c in EVIDENCE.care}
    assert "after the target dose is reached" in care["care.monitoring"]


# -- 4. planned surgery -----------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
def test_hip_replacement_in_january_moves_the_first_dose_after_the_operation(form: str) -> None:
    plan = plan_for("pn-planned-surgery.yaml", form)
    surgery = date(2027, 1, 15)
    first = steps(plan)[0][0]
    assert first == surgery + timedelta(days=10), "the label's opioid-free days after surgery"
    assert all(start > surgery for start, _, _ in steps(plan))
    text = message(plan, "schedule.surgery_deferred")
    assert "2027-01-15" in text and "2027-01-25" in text and "opioid-free for 10 days" in text
    assert "14 after long-acting" in text
    assert_review_rule(plan)


@pytest.mark.parametrize("form", FORMS)
def test_knee_surgery_next_summer_after_the_review_keeps_the_start_and_says_stop_before(
    form: str,
) -> None:
    plan = plan_for("pn-surgery-after-review.yaml", form)
    assert steps(plan)[0][0] == AS_OF
    assert all(end < date(2027, 7, 1) for _, end, _ in steps(plan))
    assert "schedule.surgery_after_review" in rules(plan)
    assert "ldn.surgery.planned" in rules(plan)


@pytest.mark.parametrize("form", FORMS)
def test_on_ldn_3_mg_with_a_hernia_repair_in_three_weeks_stops_and_restarts_after(
    form: str,
) -> None:
    plan = plan_for("pn-ldn-3mg-surgery-soon.yaml", form)
    assert steps(plan)[0][0] == date(2026, 12, 26)
    assert steps(plan)[0][2] == 3.0, "restarts from the current dose, not step 1"
    # The last dose 3 days before the operation on 16 December (whately2023), dated.
    text = message(plan, "schedule.surgery_deferred")
    assert "take the last dose of the current LDN on 2026-12-13 at the latest" in text
    assert_review_rule(plan)


@pytest.mark.parametrize("form", FORMS)
def test_surgery_four_days_ago_waits_for_the_opioid_free_interval(form: str) -> None:
    plan = plan_for("pn-surgery-four-days-ago.yaml", form)
    assert steps(plan)[0][0] == date(2026, 12, 1), "10 days after 21 November"
    text = message(plan, "schedule.surgery_recent")
    assert "2026-11-21" in text and "opioid-free for 10 days" in text
    assert_review_rule(plan)


@pytest.mark.parametrize("form", FORMS)
def test_surgery_three_weeks_ago_no_longer_delays_the_start(form: str) -> None:
    plan = plan_for("pn-surgery-three-weeks-ago.yaml", form)
    assert steps(plan)[0][0] == AS_OF
    assert not {r for r in rules(plan) if r.startswith("schedule.surgery")}


def test_the_cli_plan_shows_the_surgery_dates(tmp_path: Path) -> None:
    for form in FORMS:
        plan = cli_plan("pn-planned-surgery.yaml", form, tmp_path)
        assert plan["ldn"]["schedule"][0]["start_date"] == "2027-01-25"
        assert plan["ldn"]["course"]["start"] == "2027-01-25"


# -- 5. kidney display --------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
def test_egfr_42_prints_its_unit_once(form: str) -> None:
    text = message(plan_for("pn-ckd-egfr-42.yaml", form), "ldn.renal.impairment")
    assert text.startswith("eGFR 42 mL/min/1.73m2: kidney function is reduced")
    assert text.count("mL/min") == 1


@pytest.mark.parametrize("form", FORMS)
def test_ckd_stage_4_without_an_egfr_reads_plainly(form: str) -> None:
    plan = plan_for("pn-ckd-stage-4-no-egfr.yaml", form)
    text = message(plan, "ldn.renal.condition")
    assert text.startswith("Chronic kidney disease stage 4 is on record and no eGFR result")
    assert "mL/min" not in text and "not measured;" not in text
    assert "ldn.renal.impairment" not in rules(plan)


def test_the_markdown_plan_shows_the_kidney_message_and_the_start_low_reason(
    tmp_path: Path,
) -> None:
    result = runner.invoke(
        app, ["plan", str(HERE / "pn-ckd-egfr-42.yaml"), "--as-of", AS_OF.isoformat()]
    )
    assert result.exit_code == 0, result.stderr
    assert "mL/min/1.73m2 mL/min/1.73m2" not in result.stdout
    assert "eGFR 42 mL/min/1.73m2" in result.stdout
    assert "the schedule starts at 1 mg" in result.stdout


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_report_says_why_there_is_no_schedule_and_when_the_review_is_due(
    fmt: str, tmp_path: Path
) -> None:
    def report(name: str) -> str:
        out = tmp_path / f"{name}.{fmt}"
        args = ["plan", str(HERE / name), "-f", fmt, "--as-of", AS_OF.isoformat(), "-o", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        return out.read_text()

    unknown = report("pn-naltrexone-dose-unknown.yaml")
    assert "naltrexone is on record without a readable dose" in unknown
    assert "while a contraindication stands" not in unknown
    assert "while a contraindication stands" in report("pn-naltrexone-50mg-alcohol.yaml")
    assert "so the review is due now" in report("pn-ldn-4.5mg-for-a-year.yaml")
