"""Named vignettes for what the plan says about the evidence (issue #14 item 12, #22 item 1).

A clinician reading a plan must be told what the label actually says about opioids, which study
types stand behind a claim, and which pooled analysis is the newest one ldncare holds, worked
out from the bibliography rather than frozen into a sentence. Patients come as patient files and
as FHIR Bundles; questions go through the ask engine.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ldncare.ask import answer_question
from ldncare.evidence.loader import load_evidence
from ldncare.fhir import patient_from_bundle
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan

HERE = Path(__file__).parent / "patients"
AS_OF = date(2026, 11, 25)

#: Wording the label does not support ("will not work") or that overstates it ("every opioid").
OVERSTATED = re.compile(r"will not work|every opioid|blocks every", re.IGNORECASE)
#: A recency claim written in words rather than computed (the computed one says "the most
#: recent systematic review cited here (...)").
WRITTEN_RECENCY = re.compile(r"\b(most recent|latest|newest)\b(?! systematic reviews? cited here)")


def plan_for(name: str) -> dict[str, Any]:
    return make_plan(load_patient(HERE / name), as_of=AS_OF).to_contract(load_evidence())


def plan_from_bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    bundle["entry"] = [{"resource": r} for r in resources]
    return make_plan(patient_from_bundle(bundle), as_of=AS_OF).to_contract(load_evidence())


def fhir_patient(birth: str = "1979-06-01", sex: str = "female") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "gender": sex, "birthDate": birth}


def fhir_condition(text: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"text": text},
    }


def fhir_medication(text: str, mid: str = "m1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-10-01",
        "medicationCodeableConcept": {"text": text},
    }


def texts(contract: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Every sentence a clinician reads in the plan, with the sources it cites."""
    out = [
        (item["text"], item["citations"])
        for section in contract["guidance"].values()
        for item in section
    ]
    for f in contract["ldn"]["findings"]:
        out.append((f["message"], f["citations"]))
        out.append((f["rationale"], f["citations"]))
    return out


def finding(contract: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(f for f in contract["ldn"]["findings"] if f["rule"] == rule)


def newest_ldn_review_ids() -> set[str]:
    ev = load_evidence()
    reviews = [
        s
        for s in ev.sources.values()
        if s.evidence_type == "systematic_review" and "ldn_efficacy" in s.evidence_for
    ]
    newest = max(s.year for s in reviews)
    return {s.id for s in reviews if s.year == newest}


# --- opioid blockade: what the label says, cited to the label --------------------------------


@pytest.mark.parametrize(
    "patient_file",
    ["pn-on-tramadol.yaml", "pn-codeine-cough.yaml", "pn-fentanyl-patch.yaml", "pn-methadone.yaml"],
)
def test_patient_on_an_opioid_is_told_what_the_naltrexone_label_says_not_more(
    patient_file: str,
) -> None:
    plan = plan_for(patient_file)
    assert plan["ldn"]["eligibility"] == "not_recommended"
    for text, cites in texts(plan):
        assert not OVERSTATED.search(text), text
        # A claim about what naltrexone does to opioid medicines (not the receptor mechanism).
        if re.search(r"\bblocks? (the effects? of opioids|its pain relief)", text):
            assert "label_naltrexone" in cites, text
            assert "finnerup2015" not in cites, "a neuropathic-pain review does not discuss this"


@pytest.mark.parametrize(
    "medicine",
    ["Codeine phosphate 15 mg tablet", "Tramadol 50 mg capsule", "Oxycodone 5 mg tablet"],
)
def test_fhir_woman_with_pn_on_an_opioid_gets_the_label_wording_on_blockade(
    medicine: str,
) -> None:
    plan = plan_from_bundle(
        fhir_patient(), fhir_condition("Pudendal neuralgia"), fhir_medication(medicine)
    )
    active = finding(plan, "ldn.opioid.active")
    assert active["citations"] == ["label_naltrexone"]
    assert "blocks the effects of opioids" in active["rationale"]
    assert "precipitate withdrawal" in active["rationale"]
    assert not OVERSTATED.search(json.dumps(plan))


def test_question_on_opioid_painkillers_is_answered_from_the_label_alone() -> None:
    ans = answer_question("Will opioid painkillers still work while my patient takes LDN?")
    blockade = [
        s
        for section in ans.sections.values()
        for s in section
        if s.statement == "ldn_safety.opioids.blockade" and "block" in s.text
    ]
    assert blockade, "the blockade statement answers this question"
    refs = {r.number: r.source.id for r in ans.references}
    for sentence in blockade:
        assert {refs[n] for n in sentence.citations} == {"label_naltrexone"}
        assert "may not give their usual benefit" in sentence.text
        assert not OVERSTATED.search(sentence.text)


# --- study types: a pilot is not an RCT ----------------------------------------------------------


def test_woman_with_pn_sees_the_fibromyalgia_pilot_listed_as_a_non_randomised_trial() -> None:
    plan = plan_for("pn-woman-no-meds.yaml")
    by_id = {c["id"]: c for c in plan["citations"]}
    assert by_id["younger2009"]["evidence_type"] == "nonrandomised_trial"
    for cite in plan["citations"]:
        if "pilot" in cite["reference"].lower() and not re.search(
            r"randomi[sz]ed", cite["reference"], re.IGNORECASE
        ):
            assert cite["evidence_type"] != "rct", cite["reference"]


def test_every_statement_calling_a_study_an_rct_cites_a_randomised_source() -> None:
    ev = load_evidence()
    pooled_or_randomised = {"rct", "systematic_review", "trial_registration"}
    for statement in ev.statements.values():
        if re.search(r"\bRCTs?\b|randomised trial|randomized trial", statement.text):
            types = {ev.sources[c].evidence_type for c in statement.citations}
            assert types & pooled_or_randomised, statement.id


def test_question_about_the_pilot_says_it_was_not_randomised() -> None:
    ans = answer_question("Was the first LDN fibromyalgia pilot study randomised?")
    said = " ".join(s.text for section in ans.sections.values() for s in section)
    assert "not randomised" in said
    assert "placebo always came first" in said


# --- recency: the newest pooled evidence, computed ---------------------------------------------


def test_woman_with_pn_is_pointed_to_the_newest_meta_analysis_ldncare_holds() -> None:
    plan = plan_for("pn-woman-no-meds.yaml")
    first = plan["guidance"]["key_considerations"][0]
    assert first["statement"] == "ldn.evidence.best_available"
    assert newest_ldn_review_ids() <= set(first["citations"])
    assert "Hegde et al. 2025" in first["text"]
    assert {"vatvani2024", "rassimariani2024"} <= set(first["citations"])
    pn = finding(plan, "ldn.indication.pn")
    assert newest_ldn_review_ids() <= set(pn["citations"])
    for text, _ in texts(plan):
        assert not WRITTEN_RECENCY.search(text), text
        assert "2024 systematic reviews" not in text


def test_fhir_woman_with_pn_gets_the_same_computed_recency_as_the_patient_file() -> None:
    plan = plan_from_bundle(fhir_patient(), fhir_condition("Pudendal neuralgia"))
    pn = finding(plan, "ldn.indication.pn")
    assert "the most recent systematic review cited here (Hegde et al. 2025)" in (pn["rationale"])
    assert "hegde2025" in pn["citations"]


def test_man_with_painful_diabetic_neuropathy_hears_of_the_2025_meta_analysis() -> None:
    plan = plan_for("dpn-man-no-meds.yaml")
    neuropathic = finding(plan, "ldn.indication.neuropathic")
    assert "2025 meta-analysis" in neuropathic["rationale"]
    assert "hegde2025" in neuropathic["citations"]
    assert not WRITTEN_RECENCY.search(neuropathic["rationale"])


def test_fhir_man_with_diabetic_neuropathy_gets_the_updated_neuropathic_rationale() -> None:
    plan = plan_from_bundle(
        fhir_patient("1968-05-02", "male"), fhir_condition("Painful diabetic neuropathy")
    )
    neuropathic = finding(plan, "ldn.indication.neuropathic")
    assert "hegde2025" in neuropathic["citations"]
    assert "2024 review were negative" not in neuropathic["rationale"]


# --- dose ceiling: the dose-finding study and the 6 mg trial ------------------------------------


def test_question_about_going_above_4_5_mg_cites_the_dose_finding_study_and_the_6_mg_trial() -> (
    None
):
    ans = answer_question("Is a dose above 4.5 mg of LDN better?")
    refs = {r.number: r.source.id for r in ans.references}
    ceiling = [
        s for section in ans.sections.values() for s in section if s.statement == "ldn.dose.ceiling"
    ]
    assert ceiling
    cited = {refs[n] for s in ceiling for n in s.citations}
    assert {"bruunplesner2020", "bruun2024"} <= cited
    text = " ".join(s.text for s in ceiling)
    assert "3.88 mg" in text
    assert "5.40 mg" in text
