"""The evidence loader accepts the shipped base and refuses broken copies with a precise message.

Each broken-copy test copies the shipped data folder to ``tmp_path``, breaks one thing and
checks the exact message the loader gives, so a clinician editing the YAML is told what is wrong
and where.
"""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ldncare.errors import EvidenceError
from ldncare.evidence.loader import data_root, load_evidence_from
from ldncare.evidence.models import Evidence

DATA = Path(str(data_root()))

#: Files of the LDN evidence base proper (sources, statements, rules, dosing, care, report, and
#: the release: version and reviewed-up-to date).
CORE_FILES = (
    "sources.yaml",
    "rules.yaml",
    "ldn.yaml",
    "care.yaml",
    "report.yaml",
    "release.yaml",
)

#: Rule ids the screening logic looks up, with the severity it expects.
SCREENING_RULES = {
    "ldn.opioid.active": "contraindication",
    "ldn.opioid.washout": "contraindication",
    "ldn.opioid.history": "info",
    "ldn.surgery.planned": "warning",
    "ldn.oud.diagnosis": "warning",
    "ldn.naltrexone.current": "warning",
    "ldn.allergy.naltrexone": "contraindication",
    "ldn.hepatic.failure": "contraindication",
    "ldn.hepatic.impairment": "warning",
    "ldn.hepatic.enzymes": "warning",
    "ldn.renal.impairment": "warning",
    "ldn.pregnancy": "warning",
    "ldn.breastfeeding": "warning",
    "ldn.thyroid.levothyroxine": "warning",
    "ldn.thyroid.autoimmune": "warning",
    "ldn.immunosuppressant": "info",
    "ldn.age.older": "info",
    "ldn.frailty": "warning",
    "ldn.indication.not_recorded": "info",
    "ldn.indication.pn": "info",
    "ldn.indication.neuropathic": "info",
    "ldn.offlabel": "info",
    "ldn.age.unknown": "info",
}


def _core_copy(dest: Path) -> Path:
    """Copy only the core evidence files, so these tests do not depend on other data areas."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in CORE_FILES:
        shutil.copy(DATA / name, dest / name)
    # Warnings of the monograph medicines cite sources_drugs.yaml, and the label gaps cite
    # sources_label_gaps.yaml (and the pregabalin and Vivitrol labels): not core files.
    shutil.copytree(
        DATA / "statements",
        dest / "statements",
        ignore=shutil.ignore_patterns("drug_*.yaml", "label_gaps.yaml"),
    )
    return dest


def _full_copy(dest: Path) -> Path:
    shutil.copytree(DATA, dest)
    return dest


def _load_yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dump_yaml(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _edit_statement(root: Path, file: str, index: int, **changes: object) -> str:
    path = root / "statements" / file
    entries = _load_yaml(path)
    assert isinstance(entries, list)
    entries[index].update(changes)
    _dump_yaml(path, entries)
    return str(entries[index]["id"])


@pytest.fixture(scope="module")
def core_evidence(tmp_path_factory: pytest.TempPathFactory) -> Evidence:
    return load_evidence_from(_core_copy(tmp_path_factory.mktemp("core") / "data"))


# --- the shipped base --------------------------------------------------------------------------


def test_shipped_evidence_base_loads() -> None:
    evidence = load_evidence_from(data_root())
    assert len(evidence.statements) >= 50
    assert set(SCREENING_RULES) <= set(evidence.rules)


def test_core_evidence_files_load_on_their_own(core_evidence: Evidence) -> None:
    assert 50 <= len(core_evidence.statements) <= 120
    assert len(core_evidence.sources) >= 20
    assert {c.kind for c in core_evidence.care} == {
        "physical_therapy",
        "nerve_block",
        "lifestyle",
        "referral",
        "notice",
        "monitoring",
        "education",
    }


@pytest.mark.parametrize(("rule_id", "severity"), sorted(SCREENING_RULES.items()))
def test_every_screening_rule_exists_with_its_severity(
    core_evidence: Evidence, rule_id: str, severity: str
) -> None:
    rule = core_evidence.rule(rule_id)
    assert rule.severity == severity
    assert rule.citations, f"{rule_id} cites nothing"


def test_rule_placeholders_are_the_ones_the_logic_fills(core_evidence: Evidence) -> None:
    expected = {
        "ldn.opioid.active": {"medication"},
        "ldn.opioid.washout": {"medication", "end_date", "earliest_start"},
        "ldn.surgery.planned": {"date"},
        "ldn.hepatic.enzymes": {"test", "value", "unit", "limit"},
        "ldn.renal.impairment": {"egfr"},
        "ldn.age.older": {"age"},
        "ldn.oud.diagnosis": set(),
        "ldn.offlabel": set(),
    }
    for rule_id, names in expected.items():
        found = set(re.findall(r"\{(\w+)\}", core_evidence.rule(rule_id).message))
        assert found == names, rule_id


def test_ldn_dosing_limits_carry_units(core_evidence: Evidence) -> None:
    ldn = core_evidence.ldn
    assert ldn.rxnorm_ingredient == "7243"
    assert ldn.max_mg == Decimal("4.5")
    assert ldn.defaults.start_dose.mg_value == Decimal("1.5")
    assert ldn.start_dose.min.mg_value <= ldn.defaults.start_dose.mg_value
    assert ldn.defaults.target_dose.mg_value <= ldn.max_mg
    assert all(f.resolution.mg_value == Decimal("0.5") for f in ldn.formulations)


def test_first_key_consideration_names_its_evidence_and_says_it_is_indirect(
    core_evidence: Evidence,
) -> None:
    first = core_evidence.statements[core_evidence.report.key_considerations[0]]
    assert "2024" in first.text
    assert "pudendal neuralgia" in first.text
    assert "extrapolated" in first.text
    assert first.population != "pudendal_neuralgia"


def test_no_statement_claims_direct_pn_evidence_for_ldn(core_evidence: Evidence) -> None:
    for statement in core_evidence.statements.values():
        if "ldn" in statement.topics:
            assert statement.population != "pudendal_neuralgia", statement.id


# --- broken copies -----------------------------------------------------------------------------


def test_statement_citing_nothing_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    sid = _edit_statement(root, "ldn.yaml", 0, citations=[])
    with pytest.raises(EvidenceError) as info:
        load_evidence_from(root)
    assert str(info.value) == (f"statement {sid!r} cites no source; every clinical claim needs one")


@pytest.mark.parametrize("tag", ["subjects", "facets"])
def test_untagged_statement_is_refused(tmp_path: Path, tag: str) -> None:
    root = _core_copy(tmp_path / "data")
    path = root / "statements" / "ldn.yaml"
    entries = _load_yaml(path)
    assert isinstance(entries, list)
    del entries[2][tag]
    _dump_yaml(path, entries)
    with pytest.raises(EvidenceError, match=f"untagged statement: add '{tag}'"):
        load_evidence_from(root)


def test_statement_with_an_unknown_facet_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    _edit_statement(root, "ldn.yaml", 2, facets=["dose", "astrology"])
    with pytest.raises(EvidenceError, match="unknown facet 'astrology'"):
        load_evidence_from(root)


def test_unknown_source_id_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    sid = _edit_statement(root, "response.yaml", 1, citations=["dworkin2008", "nosuchsource"])
    with pytest.raises(EvidenceError) as info:
        load_evidence_from(root)
    assert str(info.value) == f"statement {sid!r} cites unknown source 'nosuchsource'"


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    _edit_statement(root, "pudendal_neuralgia.yaml", 2, strength="high")
    with pytest.raises(EvidenceError) as info:
        load_evidence_from(root)
    assert str(info.value) == "statements/pudendal_neuralgia.yaml[2]: strength: unknown key"


def test_dose_without_unit_in_ldn_yaml_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    text = (root / "ldn.yaml").read_text(encoding="utf-8")
    assert 'max_daily_dose: "4.5 mg"' in text
    (root / "ldn.yaml").write_text(
        text.replace('max_daily_dose: "4.5 mg"', 'max_daily_dose: "4.5"'), encoding="utf-8"
    )
    with pytest.raises(EvidenceError) as info:
        load_evidence_from(root)
    assert str(info.value) == (
        "ldn.yaml: dose: dose '4.5' has no unit; write it with one, e.g. '4.5 mg' "
        "(accepted units: mg, g, mcg)"
    )


def test_unused_source_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    sources = _load_yaml(root / "sources.yaml")
    assert isinstance(sources, list)
    sources.append(
        {
            "id": "orphan2099",
            "authors": "Nobody A",
            "year": 2099,
            "title": "A source no statement cites",
            "evidence_type": "expert_review",
            "grade": "very_low",
            "population": "general",
        }
    )
    _dump_yaml(root / "sources.yaml", sources)
    with pytest.raises(EvidenceError) as info:
        load_evidence_from(root)
    assert str(info.value) == "sources.yaml: sources cited by nothing: orphan2099"


def test_report_naming_a_missing_statement_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    report = _load_yaml(root / "report.yaml")
    assert isinstance(report, dict)
    report["treatment_approach"].append("ldn.no.such.statement")
    _dump_yaml(root / "report.yaml", report)
    with pytest.raises(EvidenceError) as info:
        load_evidence_from(root)
    assert str(info.value) == (
        "report.yaml treatment_approach: unknown statement 'ldn.no.such.statement'"
    )


def test_full_copy_with_broken_statement_is_refused_too(tmp_path: Path) -> None:
    """The same check holds when every data area is present, not just the core files."""
    root = _full_copy(tmp_path / "data")
    sid = _edit_statement(root, "ldn.yaml", 0, citations=[])
    with pytest.raises(EvidenceError) as info:
        load_evidence_from(root)
    assert str(info.value) == (f"statement {sid!r} cites no source; every clinical claim needs one")


# --- citations are complete, study types honest (issue #14 items 12 and 17) --------------------

_WHY_NOT = re.compile(r"not confirmed|could not be confirmed", re.IGNORECASE)
_PAGES = re.compile(r"\d+\s*-\s*\d+|:e?\d+")


def test_every_journal_source_has_an_identifier_or_says_why_not() -> None:
    evidence = load_evidence_from(data_root())
    for source in evidence.sources.values():
        if not source.journal:
            continue
        note = source.note or ""
        assert source.pmid or source.doi or _WHY_NOT.search(note), source.id
        has_pages = source.locator is not None and _PAGES.search(source.locator)
        assert has_pages or _WHY_NOT.search(note), f"{source.id}: no pages and no reason"


def test_the_two_incomplete_citations_of_issue_14_are_completed_or_explained() -> None:
    sources = load_evidence_from(data_root()).sources
    vatvani = sources["vatvani2024"]
    assert (vatvani.locator, vatvani.pmid, vatvani.doi) == (
        "37(4):367-378",
        "39344363",
        "10.3344/kjp.24202",
    )
    assert "PMID 39344363" in vatvani.reference_text()
    srinivasan = sources["srinivasan2021"]
    assert srinivasan.pmid is None and srinivasan.doi is None
    assert _WHY_NOT.search(srinivasan.note or ""), "say what could not be confirmed"


def test_a_pilot_without_randomisation_is_not_typed_as_an_rct() -> None:
    evidence = load_evidence_from(data_root())
    for source in evidence.sources.values():
        title = source.title.lower()
        if ("pilot" in title or "dose-response" in title) and "randomi" not in title:
            assert source.evidence_type != "rct", source.id
    assert evidence.sources["younger2009"].evidence_type == "nonrandomised_trial"
    assert evidence.sources["bruunplesner2020"].evidence_type == "nonrandomised_trial"


def test_opioid_blockade_statement_cites_the_label_not_a_neuropathic_pain_review() -> None:
    evidence = load_evidence_from(data_root())
    blockade = evidence.statements["ldn_safety.opioids.blockade"]
    assert blockade.citations == ("label_naltrexone",)
    assert "will not work" not in blockade.text
    assert "every" not in blockade.text
    for rule in evidence.rules.values():
        assert "every opioid" not in rule.rationale, rule.id


def test_dose_ceiling_cites_the_dose_finding_study_and_the_6_mg_trial() -> None:
    ceiling = load_evidence_from(data_root()).statements["ldn.dose.ceiling"]
    assert {"bruunplesner2020", "bruun2024"} <= set(ceiling.citations)
    assert "3.88 mg" in ceiling.text and "5.40 mg" in ceiling.text


def test_source_with_an_unknown_evidence_type_is_refused(tmp_path: Path) -> None:
    root = _core_copy(tmp_path / "data")
    path = root / "sources.yaml"
    entries = _load_yaml(path)
    assert isinstance(entries, list)
    younger = next(e for e in entries if e["id"] == "younger2009")
    younger["evidence_type"] = "pilot"
    _dump_yaml(path, entries)
    with pytest.raises(EvidenceError, match=r"sources.yaml\[\d+\]: evidence_type"):
        load_evidence_from(root)
