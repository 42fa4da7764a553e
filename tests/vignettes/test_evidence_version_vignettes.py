"""Named vignettes for the versioned evidence base (issue 22 item 2).

Every plan, answer, handout, FHIR export and CDS card says which evidence base it was made with
(its version and the day its evidence was reviewed up to), and a stored plan keeps that record,
so a clinician reading an old plan can tell it predates newer evidence.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question
from ldncare.cdshooks.cards import make_card
from ldncare.errors import EvidenceError
from ldncare.evidence.loader import _check_release, data_root, load_evidence, load_evidence_from
from ldncare.evidence.models import Release, Statement
from ldncare.fhir import patient_from_bundle
from ldncare.fhir.export import plan_to_bundle, validate_bundle
from ldncare.fhir.tags import EVIDENCE_BASE_EXT, plan_contracts
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from ldncare.render.answer_markdown import render_answer_markdown
from ldncare.render.markdown import render_markdown
from ldncare.store import repository as repo
from ldncare.store.db import make_engine, migrate

HERE = Path(__file__).parent / "patients"
DATA = Path(str(data_root()))
AS_OF = date(2026, 11, 25)


def release() -> Release:
    return load_evidence().release


def plan_for(name: str) -> dict[str, Any]:
    return make_plan(load_patient(HERE / name), as_of=AS_OF).to_contract(load_evidence())


def pn_bundle() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "gender": "female",
                    "birthDate": "1979-06-01",
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "Patient/p1"},
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/"
                                "condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"text": "pudendal neuralgia"},
                }
            },
        ],
    }


# --- the release file and its check -----------------------------------------------------------


def test_evidence_base_is_reviewed_up_to_no_earlier_than_its_latest_statement_review() -> None:
    ev = load_evidence()
    latest = max(s.reviewed for s in ev.statements.values() if s.reviewed is not None)
    assert ev.release.reviewed_up_to >= latest
    assert ev.release.version


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA, tmp_path / "data"))


def test_statement_reviewed_after_the_release_date_stops_the_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    rel = yaml.safe_load((root / "release.yaml").read_text("utf-8"))
    rel["reviewed_up_to"] = date(2026, 1, 1)
    (root / "release.yaml").write_text(yaml.safe_dump(rel), "utf-8")
    with pytest.raises(EvidenceError, match=r"release\.yaml: reviewed_up_to 2026-01-01 is earlier"):
        load_evidence_from(root)


def test_missing_release_file_stops_the_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "release.yaml").unlink()
    with pytest.raises(EvidenceError, match=r"release\.yaml: missing"):
        load_evidence_from(root)


def test_release_version_that_is_not_year_month_counter_stops_the_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "release.yaml").write_text("version: latest\nreviewed_up_to: 2026-12-04\n", "utf-8")
    with pytest.raises(EvidenceError, match=r"release\.yaml: version: "):
        load_evidence_from(root)


def _stmt(i: int, reviewed: date) -> Statement:
    return Statement(
        id=f"s{i}",
        topics=("ldn",),
        text="A statement about low-dose naltrexone.",
        citations=("label_naltrexone",),
        subjects=("ldn",),
        facets=("overview",),
        reviewed=reviewed,
    )


@settings(max_examples=100, deadline=None)
@given(
    up_to=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    reviews=st.lists(
        st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)), max_size=6
    ),
)
def test_release_is_refused_exactly_when_a_statement_was_reviewed_after_it(
    up_to: date, reviews: list[date]
) -> None:
    rel = Release(version="2026.12.1", reviewed_up_to=up_to)
    statements = {f"s{i}": _stmt(i, d) for i, d in enumerate(reviews)}
    if any(d > up_to for d in reviews):
        with pytest.raises(EvidenceError, match="is earlier than statement"):
            _check_release(rel, statements)
    else:
        _check_release(rel, statements)


# --- plans, reports, handout ------------------------------------------------------------------


def test_plan_for_a_woman_with_pn_names_the_evidence_base_it_was_made_with() -> None:
    contract = plan_for("pn-woman-no-meds.yaml")
    assert contract["evidence"] == {
        "version": release().version,
        "reviewed_up_to": release().reviewed_up_to.isoformat(),
    }
    md = render_markdown(contract)
    assert f"evidence base {release().version}, reviewed up to {release().reviewed_up_to}" in md


def test_plan_from_a_fhir_bundle_carries_the_same_evidence_record() -> None:
    contract = make_plan(patient_from_bundle(pn_bundle()), as_of=AS_OF).to_contract(load_evidence())
    assert contract["evidence"] == release().to_contract()


def test_plan_stored_before_versioning_renders_without_an_evidence_line() -> None:
    contract = plan_for("pn-woman-no-meds.yaml")
    del contract["evidence"]
    assert "evidence base" not in render_markdown(contract)


def test_handout_for_a_woman_with_pn_names_the_evidence_base() -> None:
    from ldncare.web.handout import handout_html

    html = handout_html(plan_for("pn-woman-no-meds.yaml"), version=1)
    assert f"evidence base {release().version}, reviewed up to {release().reviewed_up_to}" in html


def test_stored_plan_keeps_the_evidence_version_it_was_made_with(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ldncare.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        patient = load_patient(HERE / "pn-woman-no-meds.yaml")
        contract = make_plan(patient, as_of=AS_OF).to_contract(load_evidence())
        repo.add_patient(engine, patient, plan_contract=contract, actor="test:clinician")
        stored = repo.latest_plan(engine, patient.id, actor="test:clinician")
    finally:
        engine.dispose()
    assert stored is not None
    assert stored.contract["evidence"] == release().to_contract()


# --- FHIR export ------------------------------------------------------------------------------


def test_fhir_careplan_carries_the_evidence_base_extension_and_still_validates() -> None:
    contract = plan_for("pn-woman-no-meds.yaml")
    bundle = plan_to_bundle(contract, patient_ref="Patient/p1")
    careplan = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"
    )
    [ext] = [x for x in careplan["extension"] if x["url"] == EVIDENCE_BASE_EXT]
    parts = {x["url"]: x for x in ext["extension"]}
    assert parts["version"]["valueString"] == release().version
    assert parts["reviewedUpTo"]["valueDate"] == release().reviewed_up_to.isoformat()
    assert validate_bundle(bundle) == []
    # The plan contract read back from the CarePlan still carries the version.
    assert plan_contracts(careplan)[-1]["evidence"] == release().to_contract()


def test_fhir_export_of_a_plan_stored_before_versioning_has_no_evidence_extension() -> None:
    contract = plan_for("pn-woman-no-meds.yaml")
    del contract["evidence"]
    bundle = plan_to_bundle(contract, patient_ref="Patient/p1")
    careplan = bundle["entry"][0]["resource"]
    assert all(x["url"] != EVIDENCE_BASE_EXT for x in careplan["extension"])


# --- answers and CDS cards --------------------------------------------------------------------


def test_answer_about_the_ldn_dose_names_the_evidence_base_in_json_and_markdown() -> None:
    answer = answer_question("What dose of LDN is used for pudendal neuralgia?")
    assert answer.covered
    assert answer.to_contract()["evidence"] == release().to_contract()
    md = render_answer_markdown(answer)
    assert md.rstrip().endswith(
        f"_ldncare evidence base {release().version}, reviewed up to "
        f"{release().reviewed_up_to.isoformat()}._"
    )


def test_not_covered_answer_still_names_the_evidence_base_it_searched() -> None:
    answer = answer_question("How do I repair a bicycle puncture?")
    assert not answer.covered
    assert answer.to_contract()["evidence"] == release().to_contract()
    assert f"evidence base {release().version}" in render_answer_markdown(answer)


def test_cds_card_detail_names_the_evidence_base() -> None:
    card = make_card(
        summary="Opioid on record: LDN not recommended",
        indicator="warning",
        detail="**Naltrexone blocks opioids.**",
        topic=("ldn-screening", "LDN screening"),
        app_url="https://ldncare.example.org",
        patient_id="p1",
    )
    assert card["detail"].startswith("**Naltrexone blocks opioids.**")
    assert card["detail"].endswith(f"ldncare {release().label()}.*")
