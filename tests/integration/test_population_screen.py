"""Population screening: named vignette patients with known hits, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text

from ldncare.evidence.loader import load_evidence
from ldncare.fhir import patient_from_bundle
from ldncare.importing import import_bundle, import_ndjson
from ldncare.planning import make_plan
from ldncare.store import repository
from ldncare.store.db import make_engine, migrate
from ldncare.store.population import ScreenHit, screen_population
from tests.integration.followup_db import db_url, postgres_base_url

__all__ = ["db_url"]

AS_OF = date(2026, 6, 1)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _rxnorm(display: str) -> str:
    """An RxNorm code of the vendored CDC opioid value set, found by its display."""
    node = resources.files("ldncare.evidence") / "data/vocabulary/opioid_rxnorm.json"
    concepts = json.loads(node.read_text())["value_sets"]["opioid_analgesics"]["concepts"]
    return next(code for code, name in concepts["rxnorm"].items() if name == display)


OXYCODONE = (
    "Oxycodone Hydrochloride 5 MG Oral Tablet",
    _rxnorm("Oxycodone Hydrochloride 5 MG Oral Tablet"),
)


class Vignette:
    """A small FHIR record built in clinical terms."""

    def __init__(self, pid: str, *, age: int = 50, sex: str = "female") -> None:
        self.pid = pid
        born = date(AS_OF.year - age, 1, 1) if age else None
        self.resources: list[dict[str, Any]] = [
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"given": [pid.replace("-", " ").title()], "family": "Vignette"}],
                "gender": sex,
                "birthDate": born.isoformat() if born else None,
            }
        ]

    def _add(self, res: dict[str, Any]) -> Vignette:
        res["id"] = f"{self.pid}-{len(self.resources)}"
        res["subject"] = {"reference": f"Patient/{self.pid}"}
        self.resources.append(res)
        return self

    def med(self, name: str, *, status: str = "active", started_weeks_ago: int = 4,
            dose: str | None = None, code: str | None = None) -> Vignette:  # fmt: skip
        concept: dict[str, Any] = {"text": name}
        if code:
            concept["coding"] = [{"system": RXNORM, "code": code, "display": name}]
        res: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": concept,
            "authoredOn": (AS_OF - timedelta(weeks=started_weeks_ago)).isoformat(),
        }
        if dose:
            res["dosageInstruction"] = [{"text": dose}]
        return self._add(res)

    def ldn(self, *, started_weeks_ago: int = 4, dose: str = "4.5 mg at bedtime") -> Vignette:
        return self.med("Naltrexone (compounded)", dose=dose, code="7243",
                        started_weeks_ago=started_weeks_ago)  # fmt: skip

    def opioid(self, *, status: str = "active") -> Vignette:
        return self.med(OXYCODONE[0], code=OXYCODONE[1], status=status)

    def condition(self, text_: str, *, status: str = "active") -> Vignette:
        return self._add(
            {
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{"code": status}]},
                "code": {"text": text_},
                "onsetDateTime": "2024-01-01",
            }
        )

    def egfr(self, value: float) -> Vignette:
        return self._add(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
                "effectiveDateTime": "2026-05-01",
                "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}"},
            }
        )

    def pregnancy_status(self, pregnant: bool) -> Vignette:
        answer = "LA15173-0" if pregnant else "LA26683-5"
        return self._add(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
                "effectiveDateTime": "2026-05-01",
                "valueCodeableConcept": {
                    "coding": [{"system": "http://loinc.org", "code": answer}]
                },
            }
        )


def population() -> list[Vignette]:
    return [
        Vignette("ldn-and-oxycodone").ldn().opioid(),
        Vignette("ldn-and-stopped-oxycodone").ldn().opioid(status="stopped"),
        # Naltrexone 50 mg is not LDN (no review, no pregnancy check as LDN), but it blocks
        # the opioid all the same: the opioid check counts it.
        Vignette("naltrexone-50-and-oxycodone").ldn(dose="50 mg daily").opioid(),
        Vignette("ldn-13-weeks").ldn(started_weeks_ago=13),
        Vignette("ldn-pregnant-condition", age=30).ldn().condition("Normal pregnancy"),
        Vignette("ldn-pregnant-observation", age=30).ldn().pregnancy_status(True),
        Vignette("ldn-not-pregnant", age=30).ldn().pregnancy_status(False),
        Vignette("amitriptyline-at-70", age=70).med(
            "Amitriptyline Hydrochloride 10 MG Oral Tablet"
        ),
        Vignette("amitriptyline-at-64", age=64).med(
            "Amitriptyline Hydrochloride 10 MG Oral Tablet"
        ),
        Vignette("stopped-amitriptyline-at-80", age=80).med(
            "Amitriptyline Hydrochloride 10 MG Oral Tablet", status="stopped"
        ),
        Vignette("gabapentin-egfr-45").med("Gabapentin 300 MG Oral Capsule").egfr(45),
        Vignette("gabapentin-egfr-75").med("Gabapentin 300 MG Oral Capsule").egfr(75),
        Vignette("pregabalin-no-kidney-test").med("Pregabalin 75 MG Oral Capsule"),
        Vignette("pn-no-plan").condition("Pudendal neuralgia"),
        Vignette("pn-on-oxycodone").condition("Pudendal neuralgia").opioid(),
        Vignette("pn-resolved").condition("Pudendal neuralgia", status="resolved"),
        Vignette("pn-with-plan").condition("Pudendal neuralgia"),
        Vignette("plan-started-14-weeks-ago").condition("Pudendal neuralgia"),
        Vignette("plan-then-oxycodone").condition("Pudendal neuralgia").opioid(),
    ]


EXPECTED = {
    ("ldn-and-oxycodone", "ldn_with_opioid", "critical"),
    ("naltrexone-50-and-oxycodone", "ldn_with_opioid", "critical"),
    ("ldn-pregnant-condition", "pregnant_on_ldn", "warning"),
    ("ldn-pregnant-observation", "pregnant_on_ldn", "warning"),
    ("amitriptyline-at-70", "tca_age65", "critical"),
    ("gabapentin-egfr-45", "gabapentinoid_renal", "warning"),
    ("ldn-13-weeks", "ldn_review_due", "warning"),
    ("pn-no-plan", "pn_consider_ldn", "info"),
    ("plan-started-14-weeks-ago", "ldn_review_due", "warning"),
    ("plan-then-oxycodone", "ldn_with_opioid", "critical"),
}


def _bundle(vignettes: list[Vignette]) -> dict[str, Any]:
    entries = [{"resource": r} for v in vignettes for r in v.resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _save_plan(engine: Engine, vignette: Vignette, start: date) -> None:
    patient = patient_from_bundle(_bundle([vignette]))
    if vignette.pid == "plan-then-oxycodone":
        # The plan was made before the opioid was prescribed.
        patient = patient.model_copy(update={"medications": ()})
    contract = make_plan(patient, start=start, as_of=start).to_contract(load_evidence())
    assert contract["ldn"]["review_date"] is not None
    repository.save_plan(engine, vignette.pid, contract, reason="initial plan", actor="test")


def _stocked(url: str) -> Engine:
    engine = make_engine(url)
    vignettes = population()
    report = import_bundle(engine, _bundle(vignettes), "test", as_of=AS_OF)
    assert report.errors == [] and report.patients_imported == len(vignettes)
    by_id = {v.pid: v for v in vignettes}
    _save_plan(engine, by_id["pn-with-plan"], AS_OF + timedelta(days=7))
    _save_plan(engine, by_id["plan-started-14-weeks-ago"], AS_OF - timedelta(weeks=14))
    _save_plan(engine, by_id["plan-then-oxycodone"], AS_OF - timedelta(weeks=2))
    return engine


def _triples(hits: list[ScreenHit]) -> set[tuple[str, str, str]]:
    return {(h.patient_id, h.check, h.severity) for h in hits}


def test_vignette_population_gives_exactly_the_expected_hits(db_url: str) -> None:
    engine = _stocked(db_url)
    hits = screen_population(engine, AS_OF)
    engine.dispose()
    assert _triples(hits) == EXPECTED
    assert [h.severity for h in hits] == sorted(
        (h.severity for h in hits), key=["critical", "warning", "info"].index
    )


def test_ldn_with_oxycodone_names_the_opioid_and_cites_the_label(db_url: str) -> None:
    engine = _stocked(db_url)
    [hit] = [h for h in screen_population(engine, AS_OF) if h.patient_id == "ldn-and-oxycodone"]
    engine.dispose()
    assert hit.rule_id == "population.ldn.opioid_active"
    assert OXYCODONE[0] in hit.message and hit.citations == ("label_naltrexone",)
    assert hit.name == "Ldn And Oxycodone Vignette"


def test_naltrexone_50_mg_with_oxycodone_is_flagged_without_calling_it_ldn(db_url: str) -> None:
    engine = _stocked(db_url)
    [hit] = [
        h for h in screen_population(engine, AS_OF) if h.patient_id == "naltrexone-50-and-oxycodone"
    ]
    engine.dispose()
    assert (hit.check, hit.severity) == ("ldn_with_opioid", "critical")
    assert hit.rule_id == "population.ldn.opioid_active"
    assert "LDN" not in hit.message
    assert "On naltrexone (Naltrexone (compounded))" in hit.message
    assert OXYCODONE[0] in hit.message
    assert hit.detail == {"medication": OXYCODONE[0], "naltrexone": "Naltrexone (compounded)"}


def test_ldn_beside_naltrexone_50_mg_with_oxycodone_names_both_not_only_ldn(db_url: str) -> None:
    # "On LDN" would hide the 50 mg tablet, which blocks the opioid fully.
    full_dose = "Naltrexone Hydrochloride 50 MG Oral Tablet"
    both = Vignette("ldn-and-naltrexone-50").ldn().med(full_dose, dose="50 mg daily").opioid()
    engine = make_engine(db_url)
    import_bundle(engine, _bundle([both]), "test", as_of=AS_OF)
    [hit] = screen_population(engine, AS_OF, checks=["ldn_with_opioid"])
    engine.dispose()
    assert "On LDN" not in hit.message
    assert f"On naltrexone (Naltrexone (compounded), {full_dose})" in hit.message
    assert hit.detail["naltrexone"] == f"Naltrexone (compounded), {full_dose}"


def test_an_ldn_plan_beside_naltrexone_50_mg_with_oxycodone_names_the_naltrexone(
    db_url: str,
) -> None:
    full_dose = "Naltrexone Hydrochloride 50 MG Oral Tablet"
    # LDN planned in ldncare; the EHR then shows a full-dose tablet and an opioid.
    vignette = Vignette("plan-and-naltrexone-50").condition("Pudendal neuralgia")
    engine = make_engine(db_url)
    import_bundle(engine, _bundle([vignette]), "test", as_of=AS_OF)
    _save_plan(engine, vignette, AS_OF - timedelta(weeks=2))
    vignette.med(full_dose, dose="50 mg daily").opioid()
    assert import_bundle(engine, _bundle([vignette]), "test", as_of=AS_OF).patients_updated == 1
    [hit] = screen_population(engine, AS_OF, checks=["ldn_with_opioid"])
    engine.dispose()
    assert f"On naltrexone ({full_dose})" in hit.message and "On LDN" not in hit.message


def test_tca_at_70_reuses_the_beers_rule_with_age_and_drug(db_url: str) -> None:
    engine = _stocked(db_url)
    [hit] = [h for h in screen_population(engine, AS_OF) if h.check == "tca_age65"]
    engine.dispose()
    assert hit.rule_id == "option.tca.age65" and hit.citations == ("beers2023",)
    assert "Age 70" in hit.message and "Amitriptyline" in hit.message


def test_gabapentin_with_egfr_45_shows_the_kidney_basis(db_url: str) -> None:
    engine = _stocked(db_url)
    [hit] = [h for h in screen_population(engine, AS_OF) if h.check == "gabapentinoid_renal"]
    engine.dispose()
    assert "45 mL/min" in hit.message and "eGFR" in hit.message


def test_kidney_function_just_below_60_is_not_shown_as_60(db_url: str) -> None:
    # The hit says "below 60 mL/min": rounding 59.96 to 60 (or 60.0) would contradict it.
    engine = make_engine(db_url)
    vignette = Vignette("gabapentin-egfr-59.96").med("Gabapentin 300 MG Oral Capsule").egfr(59.96)
    import_bundle(engine, _bundle([vignette]), "test", as_of=AS_OF)
    [hit] = screen_population(engine, AS_OF, checks=["gabapentinoid_renal"])
    engine.dispose()
    assert "kidney function 59.9 mL/min" in hit.message and hit.detail["renal"] == 59.9


def test_review_is_not_due_before_the_planned_date(db_url: str) -> None:
    engine = _stocked(db_url)
    early = screen_population(engine, AS_OF - timedelta(weeks=10))
    engine.dispose()
    assert not any(h.check == "ldn_review_due" for h in early)


def test_sqlite_and_postgresql_give_identical_hits(tmp_path: Path) -> None:
    base = postgres_base_url()
    name = "ldncare_screen_cmp"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg_url = make_url(base).set(database=name).render_as_string(hide_password=False)
    sqlite_url = f"sqlite:///{tmp_path / 's.db'}"
    try:
        results = []
        for url in (sqlite_url, pg_url):
            migrate(url)
            engine = _stocked(url)
            results.append([h.to_json() for h in screen_population(engine, AS_OF)])
            engine.dispose()
        assert results[0] == results[1] and len(results[0]) == len(EXPECTED)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_screening_an_ndjson_export_gives_the_same_hits_without_plans(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    by_type: dict[str, list[str]] = {}
    for v in population():
        for r in v.resources:
            by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for rtype, lines in by_type.items():
        (export / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url)
    engine = make_engine(url)
    import_ndjson(engine, export, "test", as_of=AS_OF)
    hits = screen_population(engine, AS_OF)
    engine.dispose()
    # Without stored plans, the three planned PN patients are LDN candidates instead.
    plan_free = {t for t in EXPECTED if not t[0].startswith("plan-")}
    plan_free |= {("pn-with-plan", "pn_consider_ldn", "info"),
                  ("plan-started-14-weeks-ago", "pn_consider_ldn", "info")}  # fmt: skip
    assert _triples(hits) == plan_free
