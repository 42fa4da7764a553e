"""Vignettes for an active medicine the reader cannot identify (integrator review H1).

A MedicationRequest/Statement naming its drug by a reference that resolves to nothing (a
Medication not sent, a conditional or identifier reference matching none) must never be dropped
silently: it could be an opioid, and naltrexone is contraindicated with opioids. What the one
reference resolver can resolve (``Medication?code=``, ``Medication?_id=``, an identifier) is
read as the drug it names. Each case is told as a patient file and as a FHIR Bundle.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.patient import Condition, MedicationUse, Patient
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence
from ldncare.fhir import patient_from_bundle
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan

HERE = Path(__file__).parent / "patients"
AS_OF = date(2026, 11, 25)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
RULE = "ldn.medication.unidentified"
OXYCODONE: dict[str, Any] = {
    "resourceType": "Medication",
    "id": "oxy",
    "identifier": [{"system": "http://example.org/formulary", "value": "O1"}],
    "code": {"coding": [{"system": RXNORM, "code": "1049621", "display": "oxycodone 5 MG"}]},
}


def contract(patient: Patient) -> dict[str, Any]:
    result: dict[str, Any] = make_plan(patient, as_of=AS_OF).to_contract(load_evidence())
    return result


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1978-06-02"},
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "code": {"text": "Pudendal neuralgia"},
        },
        *resources,
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": r} for r in entries],
    }


def order(
    reference: dict[str, Any], rtype: str = "MedicationRequest", status: str = "active"
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": rtype,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "medicationReference": reference,
    }
    if rtype == "MedicationRequest":
        res["intent"] = "order"
    return res


def findings(plan: dict[str, Any], severity: str | None = None) -> dict[str, dict[str, Any]]:
    return {
        f["rule"]: f
        for f in plan["ldn"]["findings"]
        if severity is None or f["severity"] == severity
    }


def assert_held_for_the_unknown_medicine(plan: dict[str, Any]) -> None:
    found = findings(plan, "contraindication")
    assert RULE in found, plan["ldn"]["findings"]
    assert found[RULE]["citations"] == ["label_naltrexone"]
    assert "confirmed not to be an opioid" in found[RULE]["message"]
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert plan["ldn"]["schedule"] == []


def test_pn_patient_with_an_active_prescription_nobody_can_identify_does_not_start_ldn_file() -> (
    None
):
    assert_held_for_the_unknown_medicine(
        contract(load_patient(HERE / "pn-unidentified-active-medicine.yaml"))
    )


def test_pn_patient_whose_unidentified_prescription_ended_long_ago_is_not_held_file() -> None:
    plan = contract(load_patient(HERE / "pn-unidentified-medicine-stopped.yaml"))
    assert RULE not in findings(plan)
    assert plan["ldn"]["eligibility"] != "not_recommended"


def test_patient_file_refuses_an_identified_flag_that_is_not_true_or_false(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "id: x\nbirth_date: 1978-06-02\nsex: female\n"
        "medications: [{name: something, identified: 'no'}]\n"
    )
    with pytest.raises(InvalidInput, match="identified"):
        load_patient(path)


@pytest.mark.parametrize(
    "reference",
    [
        {"reference": "Medication/missing"},  # the Medication was never sent
        {"reference": "Medication?code=http://www.nlm.nih.gov/research/umls/rxnorm|999999"},
        {"reference": "Medication?_id=absent"},
        {"reference": "https://ehr.example.org/fhir/Medication/missing/_history/2"},
        {"identifier": {"system": "http://example.org/formulary", "value": "NOPE"}},
        {"reference": "#gone"},  # contained, but not there
    ],
    ids=["missing", "cond-code", "cond-id", "absolute-versioned", "identifier", "contained"],
)
@pytest.mark.parametrize("rtype", ["MedicationRequest", "MedicationStatement"])
def test_pn_patient_on_a_medicine_named_by_an_unresolvable_reference_does_not_start_ldn_fhir(
    reference: dict[str, Any], rtype: str
) -> None:
    plan = contract(patient_from_bundle(bundle(order(reference, rtype))))
    assert_held_for_the_unknown_medicine(plan)


@pytest.mark.parametrize(
    "reference",
    [
        {"reference": "Medication?code=http://www.nlm.nih.gov/research/umls/rxnorm|1049621"},
        {"reference": "Medication?_id=oxy"},
        {"reference": "Medication?identifier=http://example.org/formulary|O1"},
        {"identifier": {"system": "http://example.org/formulary", "value": "O1"}},
    ],
    ids=["cond-code", "cond-id", "cond-identifier", "identifier"],
)
def test_pn_patient_on_oxycodone_named_by_a_conditional_or_identifier_reference_is_on_an_opioid(
    reference: dict[str, Any],
) -> None:
    plan = contract(patient_from_bundle(bundle(order(reference), OXYCODONE)))
    found = findings(plan, "contraindication")
    assert "ldn.opioid.active" in found
    assert "oxycodone" in found["ldn.opioid.active"]["message"]
    assert RULE not in found
    assert plan["ldn"]["schedule"] == []


def test_an_unresolvable_reference_with_a_display_name_is_read_by_that_name() -> None:
    ref = {"reference": "Medication/missing", "display": "Oxycodone 5 mg tablet"}
    plan = contract(patient_from_bundle(bundle(order(ref))))
    assert "ldn.opioid.active" in findings(plan)
    assert RULE not in findings(plan)


def test_a_stopped_order_for_an_unidentified_medicine_does_not_hold_ldn() -> None:
    plan = contract(
        patient_from_bundle(bundle(order({"reference": "Medication/missing"}, status="cancelled")))
    )
    assert RULE not in findings(plan)


# -- property: an unidentified active medicine is never lost ---------------------------------
OTHER_MEDS = ["Gabapentin 300 mg", "Amitriptyline 10 mg", "Paracetamol 1 g", "Pregabalin 75 mg"]


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from(["active", "on-hold", "intended", "unknown"]),
    others=st.lists(st.sampled_from(OTHER_MEDS), max_size=3),
    ref=st.sampled_from(
        ["Medication/missing", "Medication?_id=zz", "Medication?code=http://x|1", "urn:uuid:abc"]
    ),
    with_pn=st.booleans(),
    from_fhir=st.booleans(),
)
def test_an_active_medicine_the_reader_cannot_identify_never_yields_a_plan_without_that_finding(
    status: str, others: list[str], ref: str, with_pn: bool, from_fhir: bool
) -> None:
    if from_fhir:
        resources = [order({"reference": ref}, status=status)]
        resources += [
            {
                "resourceType": "MedicationStatement",
                "status": "active",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {"text": name},
            }
            for name in others
        ]
        doc = bundle(*resources)
        if not with_pn:
            doc["entry"].pop(1)
        patient = patient_from_bundle(doc)
    else:
        patient = Patient(
            id="p",
            birth_date=date(1978, 6, 2),
            sex="female",
            conditions=(Condition(display="Pudendal neuralgia"),) if with_pn else (),
            medications=(
                MedicationUse(name=f"unresolved medication {ref}", status=status, identified=False),  # type: ignore[arg-type]
                *(MedicationUse(name=name) for name in others),
            ),
        )
    plan = contract(patient)
    assert RULE in findings(plan, "contraindication")
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert plan["ldn"]["schedule"] == []


# -- recently stopped (pharmacist review, cases 4, 5, 24, 30) ---------------------------------
STOPPED_RULE = "ldn.medication.unidentified_stopped"


def stopped_order(reference: dict[str, Any], status: str, end: str | None) -> dict[str, Any]:
    res = order(reference, status=status)
    res["authoredOn"] = "2026-10-01"
    if end is not None:
        res["dispenseRequest"] = {"validityPeriod": {"start": "2026-10-01", "end": end}}
    return res


def test_unknown_order_stopped_3_days_ago_whose_medication_was_not_sent_holds_ldn_fhir() -> None:
    # A conditional code ldncare does not know (999999), matching no Medication in the Bundle,
    # stopped 3 days before the plan: it may be methadone, still inside its 14-day interval.
    ref = {"reference": f"Medication?code={RXNORM}|999999"}
    plan = contract(patient_from_bundle(bundle(stopped_order(ref, "stopped", "2026-11-22"))))
    found = findings(plan, "contraindication")
    assert STOPPED_RULE in found, plan["ldn"]["findings"]
    assert found[STOPPED_RULE]["citations"] == ["label_naltrexone"]
    assert "ended 2026-11-22" in found[STOPPED_RULE]["message"]
    assert "14 days" in found[STOPPED_RULE]["message"]
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert plan["ldn"]["schedule"] == []


@pytest.mark.parametrize("status", ["stopped", "completed"])
def test_unidentified_order_ended_with_no_stop_date_holds_ldn_fhir(status: str) -> None:
    plan = contract(
        patient_from_bundle(bundle(stopped_order({"reference": "Medication/ghost"}, status, None)))
    )
    found = findings(plan, "contraindication")
    assert STOPPED_RULE in found
    assert "no stop date" in found[STOPPED_RULE]["message"]
    assert plan["ldn"]["eligibility"] == "not_recommended"


def test_unidentified_order_stopped_15_days_ago_no_longer_holds_ldn_fhir() -> None:
    # 2026-11-10 + 14 days = 2026-11-24, before the plan date: the longest interval has passed.
    ref = {"reference": "Medication/ghost"}
    plan = contract(patient_from_bundle(bundle(stopped_order(ref, "stopped", "2026-11-10"))))
    assert STOPPED_RULE not in findings(plan)
    assert RULE not in findings(plan)


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from(["stopped", "completed"]),
    days_ago=st.one_of(st.none(), st.integers(min_value=0, max_value=13)),
    ref=st.sampled_from(
        ["Medication/ghost", "Medication?_id=zz", f"Medication?code={RXNORM}|999999", "urn:uuid:x"]
    ),
    others=st.lists(st.sampled_from(OTHER_MEDS), max_size=3),
    with_pn=st.booleans(),
    from_fhir=st.booleans(),
)
def test_an_unidentified_medicine_stopped_within_14_days_or_undated_never_yields_an_eligible_plan(
    status: str,
    days_ago: int | None,
    ref: str,
    others: list[str],
    with_pn: bool,
    from_fhir: bool,
) -> None:
    end = None if days_ago is None else AS_OF - timedelta(days=days_ago)
    if from_fhir:
        doc = bundle(
            stopped_order({"reference": ref}, status, end.isoformat() if end else None),
            *(
                {
                    "resourceType": "MedicationStatement",
                    "status": "active",
                    "subject": {"reference": "Patient/p1"},
                    "medicationCodeableConcept": {"text": name},
                }
                for name in others
            ),
        )
        if not with_pn:
            doc["entry"].pop(1)
        patient = patient_from_bundle(doc)
    else:
        patient = Patient(
            id="p",
            birth_date=date(1978, 6, 2),
            sex="female",
            conditions=(Condition(display="Pudendal neuralgia"),) if with_pn else (),
            medications=(
                MedicationUse(
                    name=f"unresolved medication {ref}",
                    status=status,  # type: ignore[arg-type]
                    end=end,
                    identified=False,
                ),
                *(MedicationUse(name=name) for name in others),
            ),
        )
    plan = contract(patient)
    assert STOPPED_RULE in findings(plan, "contraindication")
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert plan["ldn"]["schedule"] == []


# -- a code search that matches no Medication still names the code (review, cases 19, 30) ------
def test_pn_patient_on_oxycodone_by_a_code_search_with_no_medication_sent_is_on_an_opioid() -> None:
    # RxNorm 1049621 (Oxycodone Hydrochloride 5 MG Oral Tablet, CDC opioid value set), no
    # Medication in the Bundle: the code alone is read.
    ref = {"reference": f"Medication?code={RXNORM}|1049621"}
    plan = contract(patient_from_bundle(bundle(order(ref))))
    found = findings(plan, "contraindication")
    assert "ldn.opioid.active" in found, plan["ldn"]["findings"]
    assert RULE not in found
    assert plan["ldn"]["schedule"] == []


@pytest.mark.parametrize(
    "code",
    [
        # RxNorm 864708: methadone hydrochloride 10 MG Oral Tablet [Dolophine], CDC value set.
        "864708",
        # RxNorm 6813: methadone, the ingredient alone (CDC MME conversion factors).
        "6813",
    ],
)
def test_methadone_by_a_code_stopped_3_days_ago_waits_the_long_interval_fhir(code: str) -> None:
    # Stopped 2026-11-22: the long-acting interval (14 days) applies.
    ref = {"reference": f"Medication?code={RXNORM}|{code}"}
    plan = contract(patient_from_bundle(bundle(stopped_order(ref, "stopped", "2026-11-22"))))
    found = findings(plan, "contraindication")
    assert "ldn.opioid.washout" in found, plan["ldn"]["findings"]
    assert "earliest start 2026-12-06" in found["ldn.opioid.washout"]["message"]
    assert STOPPED_RULE not in found


# -- an opioid coded only by its RxNorm ingredient (CDC MME conversion factors) ---------------
def coded_order(code: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
    }


@pytest.mark.parametrize(
    "code",
    [
        *("2670", "4337", "5489", "3423", "6813", "7052", "7804", "7814", "787390", "10689"),
        # ... and the 8 more of the CDC research factors: buprenorphine, butorphanol,
        # dihydrocodeine, levomethadyl, levorphanol, meperidine, opium, pentazocine.
        *("1819", "1841", "23088", "237005", "6378", "6754", "7676", "8001"),
    ],
)
def test_pn_patient_on_an_opioid_coded_only_by_its_ingredient_is_on_an_opioid_fhir(
    code: str,
) -> None:
    # Codeine, fentanyl, hydrocodone, hydromorphone, methadone, morphine, oxycodone,
    # oxymorphone, tapentadol, tramadol: no name, no product code, only the ingredient RxCUI.
    for doc in (bundle(coded_order(code)), bundle(order({"reference": f"Medication?code={code}"}))):
        plan = contract(patient_from_bundle(doc))
        found = findings(plan, "contraindication")
        opioid = found.get("ldn.opioid.active") or found.get("ldn.opioid.dependence")
        assert opioid is not None, plan["ldn"]["findings"]
        assert RULE not in found
        assert plan["ldn"]["schedule"] == []


def test_an_opioid_coded_only_by_its_ingredient_is_named_in_words_not_by_its_code() -> None:
    # "7804 is an opioid ..." tells a reader nothing: the message names oxycodone.
    for doc in (bundle(coded_order("7804")), bundle(order({"reference": "Medication?code=7804"}))):
        message = findings(contract(patient_from_bundle(doc)))["ldn.opioid.active"]["message"]
        assert message.startswith("oxycodone (RxNorm 7804) is an opioid"), message


def test_an_opioid_coded_by_the_rxnorm_oid_is_read_as_rxnorm() -> None:
    res = coded_order("7804")
    res["medicationCodeableConcept"]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.88"
    assert "ldn.opioid.active" in findings(contract(patient_from_bundle(bundle(res))))


@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_a_medicine_coded_only_by_a_code_ldncare_does_not_know_holds_ldn_fhir(status: str) -> None:
    # RxNorm 999999 with no text and no display: nobody reading the plan knows what it is; it
    # could be an opioid (pharmacist review round 2: it was read as of no concern).
    plan = contract(patient_from_bundle(bundle(coded_order("999999", status))))
    found = findings(plan, "contraindication")
    assert RULE in found, plan["ldn"]["findings"]
    assert "coded only as" in found[RULE]["message"]
    assert "999999" in found[RULE]["message"]
    assert plan["ldn"]["eligibility"] == "not_recommended"


def test_a_medicine_coded_only_by_an_unknown_code_stopped_3_days_ago_holds_ldn_fhir() -> None:
    res = coded_order("999999", "stopped")
    res["dispenseRequest"] = {"validityPeriod": {"start": "2026-10-01", "end": "2026-11-22"}}
    found = findings(contract(patient_from_bundle(bundle(res))), "contraindication")
    assert STOPPED_RULE in found


def test_a_medicine_with_an_unknown_code_and_a_name_is_read_by_its_name() -> None:
    # Hydrochlorothiazide 25 MG Oral Tablet (a Synthea product code ldncare does not list): a
    # named medicine of no concern does not hold LDN.
    res = coded_order("310798")
    res["medicationCodeableConcept"]["coding"][0]["display"] = (
        "Hydrochlorothiazide 25 MG Oral Tablet"
    )
    plan = contract(patient_from_bundle(bundle(res)))
    assert RULE not in findings(plan)
    assert plan["ldn"]["eligibility"] != "not_recommended"


def test_a_code_search_for_one_of_several_codes_reads_each_of_them() -> None:
    ref = {"reference": f"Medication?code={RXNORM}|999999,{RXNORM}|1049621"}
    plan = contract(patient_from_bundle(bundle(order(ref))))
    assert "ldn.opioid.active" in findings(plan, "contraindication")


def test_a_code_search_for_a_code_ldncare_does_not_know_stays_unidentified() -> None:
    ref = {"reference": f"Medication?code={RXNORM}|999999"}
    plan = contract(patient_from_bundle(bundle(order(ref))))
    assert RULE in findings(plan, "contraindication")


# -- the message names each record and says what to do (review item 3) -------------------------
def test_the_unidentified_finding_names_the_order_its_reference_status_and_date_fhir() -> None:
    req = order({"reference": "Medication/ghost"})
    req["id"] = "r1"
    req["authoredOn"] = "2026-10-01"
    plan = contract(patient_from_bundle(bundle(req)))
    message = findings(plan, "contraindication")[RULE]["message"]
    assert "MedicationRequest/r1 naming Medication/ghost (active, dated 2026-10-01)" in message
    assert "Ask the patient, the pharmacy or the source EHR" in message
    assert "check when any opioid was last taken" in message
    assert "no code or name" not in message


def test_a_code_search_ldncare_does_not_know_is_named_with_its_code_not_as_codeless() -> None:
    req = order({"reference": f"Medication?code={RXNORM}|999999"})
    req["id"] = "r9"
    plan = contract(patient_from_bundle(bundle(req)))
    message = findings(plan, "contraindication")[RULE]["message"]
    assert f"MedicationRequest/r9 naming Medication?code={RXNORM}|999999" in message
    assert f"searched for by code {RXNORM}|999999" in message
    assert "no code or name" not in message


def test_a_stopped_unidentified_statement_is_named_with_its_end_date_fhir() -> None:
    ref = {"reference": "Medication/ghost"}
    res = stopped_order(ref, "stopped", "2026-11-22")
    res["id"] = "r2"
    plan = contract(patient_from_bundle(bundle(res)))
    message = findings(plan, "contraindication")[STOPPED_RULE]["message"]
    assert "MedicationRequest/r2 naming Medication/ghost (stopped, ended 2026-11-22)" in message
    assert "Ask the patient, the pharmacy or the source EHR" in message


# -- a minor: the age finding leads (review item 6) ---------------------------------------------
def test_a_16_year_old_on_an_unidentified_medicine_and_oxycodone_is_told_the_age_first_fhir() -> (
    None
):
    doc = bundle(
        order({"reference": "Medication/ghost"}),
        order({"reference": f"Medication?code={RXNORM}|1049621"}),
    )
    doc["entry"][0]["resource"]["birthDate"] = "2010-06-02"
    plan = contract(patient_from_bundle(doc))
    first = plan["ldn"]["findings"][0]
    assert first["rule"] == "ldn.age.minor", [f["rule"] for f in plan["ldn"]["findings"]]
    assert {RULE, "ldn.opioid.active"} <= set(findings(plan, "contraindication"))


# -- the report reads "on hold until identified" (review item 5) --------------------------------
def test_pn_patient_held_only_by_an_unknown_medicine_reads_on_hold_until_identified() -> None:
    from ldncare.render.report import build_report

    report = build_report(contract(patient_from_bundle(bundle(order({"reference": "#gone"})))))
    assert report.eligibility.startswith("LDN is on hold until the unidentified medicine")
    assert "not recommended" not in report.eligibility


def test_pn_patient_also_on_oxycodone_still_reads_not_recommended() -> None:
    from ldncare.render.report import build_report

    doc = bundle(
        order({"reference": "Medication/ghost"}),
        order({"reference": f"Medication?code={RXNORM}|1049621"}),
    )
    report = build_report(contract(patient_from_bundle(doc)))
    assert "not recommended" in report.eligibility


def test_an_unidentified_order_exported_and_read_back_keeps_its_record_in_the_message() -> None:
    import json

    from ldncare.fhir.patient_export import export_bundle

    req = order({"reference": "Medication/ghost"})
    req["id"] = "r1"
    patient = patient_from_bundle(bundle(req))
    again = patient_from_bundle(json.loads(json.dumps(export_bundle(patient, contract(patient)))))
    message = findings(contract(again), "contraindication")[RULE]["message"]
    assert "MedicationRequest/r1 naming Medication/ghost" in message
