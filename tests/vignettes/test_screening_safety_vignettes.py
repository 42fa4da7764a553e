"""Vignettes for the LDN screening fixes of issue 14 (clinical safety review).

Each case is told twice: as an ldncare patient file under ``patients/`` and as a FHIR R4 Bundle
built here (MedicationRequest or MedicationStatement, Condition, Observation), and both are run
through ``make_plan`` (the CLI ``plan`` path for a few), so the two readers are held to the same
clinical answer.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.evidence.loader import load_evidence
from ldncare.fhir import patient_from_bundle
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan

HERE = Path(__file__).parent / "patients"
AS_OF = date(2026, 11, 25)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"


# -- helpers ------------------------------------------------------------------------------
def contract(patient: Any) -> dict[str, Any]:
    result: dict[str, Any] = make_plan(patient, as_of=AS_OF).to_contract(load_evidence())
    return result


def from_file(name: str) -> dict[str, Any]:
    return contract(load_patient(HERE / name))


def rules(plan: dict[str, Any], severity: str | None = None) -> set[str]:
    return {
        f["rule"] for f in plan["ldn"]["findings"] if severity is None or f["severity"] == severity
    }


def message(plan: dict[str, Any], rule: str) -> str:
    return " ".join(f["message"] for f in plan["ldn"]["findings"] if f["rule"] == rule)


def bundle(
    *resources: dict[str, Any], birth: str | None = "1980-03-14", pn: bool = True
) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    if birth is not None:
        patient["birthDate"] = birth
    entries = [patient, *resources]
    if pn:
        entries.append(condition("Pudendal neuralgia"))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in entries],
    }


def med_request(
    text: str | None = None,
    *,
    status: str = "active",
    code: tuple[str, str] | None = None,
    authored: str | None = None,
    dose: str | None = None,
) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if text:
        concept["text"] = text
    if code:
        concept["coding"] = [{"system": RXNORM, "code": code[0], "display": code[1]}]
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": concept,
    }
    if authored:
        res["authoredOn"] = authored
    if dose:
        res["dosageInstruction"] = [{"text": dose}]
    return res


def med_statement(
    text: str, *, status: str = "active", asserted: str | None = None, dose: str | None = None
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": text},
    }
    if asserted:
        res["dateAsserted"] = asserted
    if dose:
        res["dosage"] = [{"text": dose}]
    return res


def condition(text: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": text},
        "clinicalStatus": {"coding": [{"system": STATUS, "code": status}]},
    }


def liver_test(loinc: str, value: float, high: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "effectiveDateTime": "2026-11-10",
        "valueQuantity": {"value": value, "unit": "U/L"},
        "referenceRange": [{"high": {"value": high, "unit": "U/L"}}],
    }


def from_bundle(*resources: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return contract(patient_from_bundle(bundle(*resources, **kwargs)))


def assert_no_ldn_schedule(plan: dict[str, Any]) -> None:
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert plan["ldn"]["schedule"] == []


# -- 1. patients under 18 ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pn-age-15.yaml", "pn-age-17-day-before-18th-birthday.yaml"])
def test_minor_with_pn_gets_no_adult_ldn_plan_file(name: str) -> None:
    plan = from_file(name)
    assert_no_ldn_schedule(plan)
    assert "ldn.age.minor" in rules(plan, "contraindication")
    assert "paediatric pain specialist" in message(plan, "ldn.age.minor")


@pytest.mark.parametrize("birth", ["2011-06-01", "2008-11-26", "2020-01-01"])
def test_minor_with_pn_gets_no_adult_ldn_plan_fhir(birth: str) -> None:
    plan = from_bundle(birth=birth)
    assert_no_ldn_schedule(plan)
    assert "ldn.age.minor" in rules(plan)


def test_eighteenth_birthday_today_is_an_adult() -> None:
    plan = from_file("pn-age-18-on-birthday.yaml")
    assert "ldn.age.minor" not in rules(plan)
    assert plan["ldn"]["eligibility"] == "eligible"
    assert plan["ldn"]["schedule"]
    assert "ldn.age.minor" not in rules(from_bundle(birth="2008-11-25"))


def test_missing_birth_date_shows_the_adult_plan_only_with_a_warning() -> None:
    for plan in (from_file("pn-no-birth-date.yaml"), from_bundle(birth=None)):
        assert "ldn.age.unconfirmed" in rules(plan, "warning")
        assert plan["ldn"]["eligibility"] == "eligible_with_cautions"
        assert "18 or older" in message(plan, "ldn.age.unconfirmed")


def test_fifteen_year_old_on_the_cli_gets_no_schedule(tmp_path: Path) -> None:
    path = tmp_path / "teen.json"
    path.write_text(json.dumps(bundle(birth="2011-06-01")), encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(path), "-f", "json", "--as-of", "2026-11-25"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert_no_ldn_schedule(data)
    assert "ldn.age.minor" in rules(data)


# -- 2. kratom and 7-OH -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["pn-kratom-capsules.yaml", "pn-kratom-in-dose-text.yaml", "pn-7oh-gummies.yaml"],
)
def test_current_kratom_or_7oh_makes_ldn_not_recommended_file(name: str) -> None:
    plan = from_file(name)
    assert_no_ldn_schedule(plan)
    assert "ldn.opioid.active" in rules(plan, "contraindication")
    assert "ldn.opioid_acting.ask" in rules(plan, "warning")


@pytest.mark.parametrize(
    "resource",
    [
        med_statement("Kratom"),
        med_statement("Red Bali kratom powder", dose="1 teaspoon in tea twice daily"),
        med_statement("Herbal supplement", dose="mitragynine 20 mg capsules"),
        med_statement("Dietary supplement", dose="7-hydroxymitragynine tablet when needed"),
        med_request("Mitragyna speciosa leaf extract"),
        med_statement("7-OH shot", status="unknown"),
        med_statement("Kratom", status="on-hold"),
    ],
    ids=["kratom", "kratom-strain", "dose-mitragynine", "dose-7oh", "latin", "7oh-shot", "on-hold"],
)
def test_current_kratom_or_7oh_makes_ldn_not_recommended_fhir(resource: dict[str, Any]) -> None:
    plan = from_bundle(resource)
    assert_no_ldn_schedule(plan)
    assert "ldn.opioid.active" in rules(plan)
    assert "ldn.opioid_acting.ask" in rules(plan)


def test_kratom_dependence_on_the_problem_list_alone_stops_ldn() -> None:
    for plan in (
        from_file("pn-kratom-dependence-problem-list.yaml"),
        from_bundle(condition("Kratom dependence")),
        from_bundle(condition("Kratom use disorder, moderate")),
    ):
        assert_no_ldn_schedule(plan)
        assert "ldn.opioid_acting.condition" in rules(plan, "contraindication")


def test_resolved_kratom_use_asks_to_confirm_it_has_stopped() -> None:
    for plan in (
        from_file("pn-kratom-use-resolved.yaml"),
        from_bundle(condition("Kratom use", status="resolved")),
    ):
        assert "ldn.opioid_acting.history" in rules(plan, "warning")
        assert plan["ldn"]["eligibility"] == "eligible_with_cautions"


def test_mitragynine_stopped_three_days_ago_must_wait_for_washout() -> None:
    plan = from_file("pn-mitragynine-stopped-3-days.yaml")
    assert_no_ldn_schedule(plan)
    assert "2026-12-02" in message(plan, "ldn.opioid.washout_opioid_acting")


def test_plain_herbal_supplement_is_not_taken_for_kratom() -> None:
    # Not kratom (no stop, no kratom finding), but an unrecognised herbal product is asked about
    # before the first dose (second clinical re-review: brand-name kratom products are missed).
    plan = from_bundle(med_statement("Herbal supplement", dose="valerian root 450 mg at night"))
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"
    assert plan["ldn"]["schedule"], "a question to ask, not a stop"
    assert "ldn.opioid_acting.ask" not in rules(plan)
    assert "ldn.opioid_acting.unrecognised_product" in rules(plan, "warning")


# -- 3. stopped opioid without a stop date --------------------------------------------------
def test_oxycodone_stopped_without_end_date_written_five_days_ago_waits_file() -> None:
    plan = from_file("pn-oxycodone-stopped-no-end-written-5-days-ago.yaml")
    assert_no_ldn_schedule(plan)
    text = message(plan, "ldn.opioid.washout_assumed")
    assert "2026-11-20" in text and "2026-11-30" in text
    assert "ldn.opioid.history" not in rules(plan)


@pytest.mark.parametrize(
    "resource",
    [
        med_request("Oxycodone Hydrochloride 5 MG Oral Tablet", status="stopped",
                    authored="2026-11-20"),
        med_request(status="stopped", authored="2026-11-20",
                    code=("1049621", "oxycodone hydrochloride 5 MG Oral Tablet")),
        med_statement("Tramadol 50 mg", status="completed", asserted="2026-11-24"),
    ],
    ids=["request-text", "request-rxnorm", "statement-asserted"],
)  # fmt: skip
def test_recent_undated_stopped_opioid_waits_fhir(resource: dict[str, Any]) -> None:
    plan = from_bundle(resource)
    assert_no_ldn_schedule(plan)
    assert "ldn.opioid.washout_assumed" in rules(plan)
    assert "ldn.opioid.history" not in rules(plan)


def test_methadone_completed_twelve_days_ago_uses_the_long_acting_interval() -> None:
    plan = from_file("pn-methadone-completed-no-end-12-days-ago.yaml")
    assert_no_ldn_schedule(plan)
    assert "2026-11-27" in message(plan, "ldn.opioid.washout_assumed")


def test_stopped_tramadol_with_no_date_at_all_asks_when_it_was_stopped() -> None:
    for plan in (
        from_file("pn-tramadol-stopped-no-dates.yaml"),
        from_bundle(med_request("Tramadol Hydrochloride 50 MG Oral Tablet", status="stopped")),
    ):
        assert "ldn.opioid.stop_unknown" in rules(plan, "warning")
        assert "ldn.opioid.history" not in rules(plan)
        assert plan["ldn"]["eligibility"] == "eligible_with_cautions"


def test_undated_codeine_stopped_long_ago_is_history_and_says_the_date_was_assumed() -> None:
    for plan in (
        from_file("pn-codeine-stopped-no-end-2024.yaml"),
        from_bundle(med_request("Tylenol with Codeine #3", status="stopped",
                                authored="2024-01-10")),
    ):  # fmt: skip
        assert "ldn.opioid.stop_assumed" in rules(plan, "info")
        assert "2024-01-10" in message(plan, "ldn.opioid.stop_assumed")
        assert plan["ldn"]["eligibility"] == "eligible"


def test_cancelled_opioid_order_is_still_history_not_a_washout() -> None:
    plan = from_bundle(med_request("Oxycodone 5 mg", status="cancelled", authored="2026-11-20"))
    assert "ldn.opioid.history" in rules(plan)
    assert "ldn.opioid.washout_assumed" not in rules(plan)


# -- 4. transplant and MS immunosuppression ---------------------------------------------------
def test_kidney_transplant_on_tacrolimus_and_mycophenolate_involves_the_transplant_team() -> None:
    for plan in (
        from_file("pn-kidney-transplant-tacrolimus-mycophenolate.yaml"),
        from_bundle(
            condition("History of kidney transplant"),
            med_request("tacrolimus 1 MG Oral Capsule"),
            med_request("Mycophenolate Mofetil 500 MG Oral Tablet"),
        ),
    ):
        assert "ldn.immunosuppressant.transplant" in rules(plan, "warning")
        assert plan["ldn"]["eligibility"] == "eligible_with_cautions"
        assert "transplant team" in message(plan, "ldn.immunosuppressant.transplant")


def test_transplant_message_names_the_anti_rejection_drugs() -> None:
    plan = from_file("pn-kidney-transplant-tacrolimus-mycophenolate.yaml")
    text = message(plan, "ldn.immunosuppressant.transplant")
    assert "Prograf" in text and "CellCept" in text


@pytest.mark.parametrize("name", ["pn-ms-gilenya.yaml", "pn-ms-ocrelizumab.yaml"])
def test_ms_disease_modifying_drug_involves_the_ms_team_file(name: str) -> None:
    plan = from_file(name)
    assert "ldn.immunosuppressant.ms_dmt" in rules(plan, "warning")
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"


@pytest.mark.parametrize(
    "resource",
    [
        med_request("Mayzent 2 MG Oral Tablet"),
        med_request("Zeposia 0.92 MG Oral Capsule"),
        med_request("ponesimod 20 MG Oral Tablet"),
        med_statement("Tecfidera 240 mg"),
        med_request("Aubagio 14 MG Oral Tablet"),
        med_request("Tysabri 300 MG in 15 ML Injection"),
        med_request("Mavenclad 10 MG Oral Tablet"),
        med_request(code=("1012895", "fingolimod 0.5 MG Oral Capsule")),
    ],
    ids=["siponimod", "ozanimod", "ponesimod", "fumarate", "teriflunomide", "natalizumab",
         "cladribine", "fingolimod-code-display"],
)  # fmt: skip
def test_ms_disease_modifying_drug_involves_the_ms_team_fhir(resource: dict[str, Any]) -> None:
    plan = from_bundle(resource)
    assert "ldn.immunosuppressant.ms_dmt" in rules(plan, "warning")


def test_stopped_fingolimod_is_not_flagged() -> None:
    plan = from_bundle(med_request("Gilenya 0.5 MG", status="stopped", authored="2020-01-01"))
    assert "ldn.immunosuppressant.ms_dmt" not in rules(plan)


# -- 5. methylnaltrexone or a naloxone kit ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "reason"),
    [("pn-relistor.yaml", "constipation"), ("pn-naloxone-kit.yaml", "overdose")],
)
def test_opioid_companion_prompts_to_check_for_opioid_use_file(name: str, reason: str) -> None:
    plan = from_file(name)
    assert "ldn.opioid_companion" in rules(plan, "warning")
    assert reason in message(plan, "ldn.opioid_companion")


@pytest.mark.parametrize(
    "resource",
    [
        med_request("methylnaltrexone bromide 12 MG/0.6ML Injection"),
        med_request(code=("979113", "Relistor 150 MG Oral Tablet")),
        med_statement("Naloxone 4 mg nasal spray kit"),
        med_request("Kloxxado 8 MG Nasal Spray"),
    ],
    ids=["methylnaltrexone", "relistor-code", "naloxone-kit", "kloxxado"],
)
def test_opioid_companion_prompts_to_check_for_opioid_use_fhir(resource: dict[str, Any]) -> None:
    plan = from_bundle(resource)
    assert "ldn.opioid_companion" in rules(plan, "warning")


def test_suboxone_is_an_opioid_stop_not_a_naloxone_prompt() -> None:
    plan = from_bundle(med_request("Suboxone 8 MG / 2 MG Sublingual Film"))
    assert "ldn.opioid.active" in rules(plan)
    assert "ldn.opioid_companion" not in rules(plan)


# -- 6. opioid antidiarrhoeals ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["pn-loperamide.yaml", "pn-lomotil.yaml"])
def test_opioid_antidiarrhoeal_stays_eligible_with_a_note_file(name: str) -> None:
    plan = from_file(name)
    assert plan["ldn"]["eligibility"] == "eligible"
    assert "ldn.opioid_antidiarrheal" in rules(plan, "info")
    assert plan["ldn"]["schedule"]


@pytest.mark.parametrize(
    "resource",
    [
        med_statement("Imodium A-D 2 mg"),
        med_request("Diphenoxylate Hydrochloride 2.5 MG / Atropine Sulfate 0.025 MG Oral Tablet"),
    ],
    ids=["imodium", "diphenoxylate"],
)
def test_opioid_antidiarrhoeal_stays_eligible_with_a_note_fhir(resource: dict[str, Any]) -> None:
    plan = from_bundle(resource)
    assert plan["ldn"]["eligibility"] == "eligible"
    assert "ldn.opioid_antidiarrheal" in rules(plan)


# -- 7. marked liver-enzyme rise -----------------------------------------------------------------
def test_alt_above_three_times_the_upper_limit_is_a_stop_not_a_mild_rise() -> None:
    for plan in (
        from_file("pn-alt-four-times-upper-limit.yaml"),
        from_bundle(liver_test("1742-6", 140, 35)),
    ):
        assert_no_ldn_schedule(plan)
        assert "ldn.hepatic.enzymes_marked" in rules(plan, "contraindication")
        assert "3 times" in message(plan, "ldn.hepatic.enzymes_marked")


def test_ast_exactly_three_times_the_upper_limit_keeps_the_mild_rise_wording() -> None:
    for plan in (
        from_file("pn-ast-exactly-three-times-upper-limit.yaml"),
        from_bundle(liver_test("1920-8", 105, 35)),
    ):
        assert "ldn.hepatic.enzymes" in rules(plan, "warning")
        assert "ldn.hepatic.enzymes_marked" not in rules(plan)


def test_mild_alt_rise_keeps_the_existing_rule() -> None:
    plan = from_file("pn-raised-alt.yaml")
    assert "ldn.hepatic.enzymes" in rules(plan)
    assert "ldn.hepatic.enzymes_marked" not in rules(plan)


# -- edge cases found on review -----------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["History of kratom use", "Kratom use disorder, in remission", "Former kratom user"]
)
def test_active_problem_list_entry_worded_as_past_kratom_use_asks_rather_than_stops(
    text: str,
) -> None:
    plan = from_bundle(condition(text))
    assert "ldn.opioid_acting.history" in rules(plan, "warning")
    assert "ldn.opioid_acting.condition" not in rules(plan)


def test_kratom_entered_in_error_is_not_asked_about() -> None:
    plan = from_bundle(med_statement("Kratom", status="entered-in-error"))
    assert "ldn.opioid_acting.ask" not in rules(plan)


def test_stopped_opioid_dated_in_the_future_counts_from_that_date() -> None:
    plan = from_bundle(med_request("Oxycodone 5 mg", status="stopped", authored="2026-12-01"))
    assert_no_ldn_schedule(plan)
    assert "2026-12-11" in message(plan, "ldn.opioid.washout_assumed")


def test_transplant_or_ms_drug_gets_one_warning_not_also_the_generic_note() -> None:
    transplant = from_file("pn-kidney-transplant-tacrolimus-mycophenolate.yaml")
    assert "ldn.immunosuppressant" not in rules(transplant)
    ms = from_file("pn-ms-gilenya.yaml")
    assert "ldn.immunosuppressant" not in rules(ms)
    # Without a transplant or MS drug the generic note stays.
    assert "ldn.immunosuppressant" in rules(from_file("pn-tacrolimus.yaml"))


def test_marked_rise_without_a_unit_reads_cleanly() -> None:
    plan = from_bundle(
        {
            "resourceType": "Observation",
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": LOINC, "code": "1742-6"}]},
            "valueQuantity": {"value": 200},
            "referenceRange": [{"high": {"value": 40}}],
        }
    )
    assert "ALT is 200, more than 3 times" in message(plan, "ldn.hepatic.enzymes_marked")
