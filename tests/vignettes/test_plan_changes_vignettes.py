"""Re-assessment under a newer evidence base shows what changed for that patient (issue 22).

The "older base" in these vignettes is a copy of the shipped one with an earlier version number
and the edits a review might have made since: a statement reworded, one added to the report,
the thyroid cautions once graded as notes. A plan stored under it, compared with the same
patient re-planned under the shipped base, must list exactly those differences.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ldncare import planning
from ldncare.cli import app
from ldncare.core.plan_changes import compare_plans, describe_changes
from ldncare.evidence.loader import data_root, load_evidence, load_evidence_from
from ldncare.evidence.models import Evidence
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from ldncare.store import repository as repo
from ldncare.store.db import make_engine, migrate

HERE = Path(__file__).parent / "patients"
DATA = Path(str(data_root()))
AS_OF = date(2026, 11, 25)
START = date(2026, 12, 1)
THYROID = ("ldn.thyroid.levothyroxine", "ldn.thyroid.autoimmune")
REWORDED = "ldn.offlabel.status"
ADDED = "pn.management.ladder"
runner = CliRunner()


def _rewrite(path: Path, edit: Any) -> None:
    data = yaml.safe_load(path.read_text("utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")


@pytest.fixture(scope="module")
def older_base(tmp_path_factory: pytest.TempPathFactory) -> Evidence:
    root = Path(shutil.copytree(DATA, tmp_path_factory.mktemp("old") / "data"))
    _rewrite(root / "release.yaml", lambda d: d.update(version="2026.11.1"))

    def notes(rules: list[dict[str, Any]]) -> None:
        for r in rules:
            if r["id"] in THYROID:
                r["severity"] = "info"

    _rewrite(root / "rules.yaml", notes)

    def outline(d: dict[str, Any]) -> None:
        d["from_the_guidelines"].remove(ADDED)

    _rewrite(root / "report.yaml", outline)

    def reword(entries: list[dict[str, Any]]) -> None:
        for e in entries:
            if e["id"] == REWORDED:
                e["text"] = "Low-dose naltrexone is used off-label for pain."

    _rewrite(root / "statements" / "ldn.yaml", reword)
    return load_evidence_from(root)


def _plan(name: str, evidence: Evidence | None = None) -> dict[str, Any]:
    patient = load_patient(HERE / name)
    ev = evidence or load_evidence()
    original = planning.load_evidence
    planning.load_evidence = lambda: ev  # type: ignore[assignment]
    try:
        return make_plan(patient, as_of=AS_OF, start=START).to_contract(ev)
    finally:
        planning.load_evidence = original  # type: ignore[assignment]


def test_woman_on_levothyroxine_planned_under_the_older_base_sees_the_thyroid_caution_appear(
    older_base: Evidence,
) -> None:
    earlier = _plan("pn-levothyroxine.yaml", older_base)
    later = _plan("pn-levothyroxine.yaml")
    changes = compare_plans(earlier, later)
    assert changes.new_evidence_base
    assert changes.evidence_before == {"version": "2026.11.1", "reviewed_up_to": "2026-12-04"}
    assert changes.statements_added == (ADDED,)
    assert changes.statements_removed == ()
    assert changes.statements_changed == (REWORDED,)
    moved = {d.what: (d.before, d.after) for d in changes.decisions}
    assert moved["ldn.eligibility"] == ("eligible", "eligible_with_cautions")
    for rule in THYROID:
        assert moved[f"finding {rule}"] == ("info", "warning")
    lines = describe_changes(changes)
    assert "Decision moved: ldn.eligibility: eligible -> eligible_with_cautions" in lines


def test_woman_without_thyroid_disease_sees_only_the_statements_change(
    older_base: Evidence,
) -> None:
    changes = compare_plans(
        _plan("pn-woman-no-meds.yaml", older_base), _plan("pn-woman-no-meds.yaml")
    )
    assert changes.statements_changed == (REWORDED,)
    assert not any(d.what == "ldn.eligibility" for d in changes.decisions)


def test_the_same_base_changes_nothing_for_the_patient() -> None:
    plan = _plan("pn-levothyroxine.yaml")
    changes = compare_plans(plan, _plan("pn-levothyroxine.yaml"))
    assert not changes.new_evidence_base
    assert changes.nothing_changed
    assert describe_changes(changes)[-1] == "Nothing in the plan changed for this patient."


def test_plan_stored_before_versioning_reads_as_base_not_recorded() -> None:
    earlier = _plan("pn-woman-no-meds.yaml")
    del earlier["evidence"]
    changes = compare_plans(earlier, _plan("pn-woman-no-meds.yaml"))
    assert changes.new_evidence_base
    assert "not recorded (plan made before versioning)" in describe_changes(changes)[0]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ldncare.db'}"
    migrate(url)
    monkeypatch.setenv("LDNCARE_DATABASE_URL", url)
    yield url


def _store(url: str, name: str, contract: dict[str, Any]) -> str:
    engine = make_engine(url)
    try:
        patient = load_patient(HERE / name)
        repo.add_patient(engine, patient, plan_contract=contract, actor="test:clinician")
        return patient.id
    finally:
        engine.dispose()


def test_cli_patient_changes_lists_what_the_newer_base_changes_for_a_stored_patient(
    db: str, older_base: Evidence
) -> None:
    pid = _store(db, "pn-levothyroxine.yaml", _plan("pn-levothyroxine.yaml", older_base))
    result = runner.invoke(app, ["patient", "changes", pid, "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["plan_version"] == 1
    assert data["evidence_after"] == load_evidence().release.to_contract()
    assert data["statements_changed"] == [REWORDED]
    assert {"what": "ldn.eligibility", "before": "eligible", "after": "eligible_with_cautions"} in (
        data["decisions"]
    )
    text = runner.invoke(app, ["patient", "changes", pid])
    assert "Statements added: pn.management.ladder" in text.stdout


def test_cli_patient_changes_for_an_unknown_patient_is_not_found(db: str) -> None:
    result = runner.invoke(app, ["patient", "changes", "nobody"])
    assert result.exit_code == 3
    assert "nobody" in result.stderr


_ids = st.lists(st.sampled_from([f"s{i}" for i in range(8)]), unique=True, max_size=8)


def _contract(ids: list[str], eligibility: str) -> dict[str, Any]:
    """A whole plan contract whose only statements are ``ids`` and whose verdict is
    ``eligibility`` (the rest is one vignette's plan, the same for every call)."""
    contract = json.loads(json.dumps(_base_plan()))
    contract["guidance"] = {
        "from_the_guidelines": [],
        "key_considerations": [{"statement": i, "text": f"text {i}", "citations": []} for i in ids],
        "treatment_approach": [],
    }
    contract["ldn"].update(eligibility=eligibility, findings=[])
    return contract


@functools.cache
def _base_plan() -> dict[str, Any]:
    return _plan("pn-woman-no-meds.yaml")


@settings(max_examples=100, deadline=None)
@given(a=_ids, b=_ids, ea=st.sampled_from(["eligible", "not_recommended"]))
def test_comparison_is_symmetric_and_empty_only_for_equal_plans(
    a: list[str], b: list[str], ea: str
) -> None:
    forward = compare_plans(_contract(a, ea), _contract(b, "eligible"))
    backward = compare_plans(_contract(b, "eligible"), _contract(a, ea))
    assert forward.statements_added == backward.statements_removed
    assert forward.statements_removed == backward.statements_added
    assert set(forward.statements_added) == set(b) - set(a)
    assert forward.nothing_changed == (set(a) == set(b) and ea == "eligible")
