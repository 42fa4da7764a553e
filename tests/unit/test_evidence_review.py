"""Review is a routine: every statement carries the day it was last re-read, and
``ldncare sources --stale`` lists statements overdue for review and sources overtaken by newer
ones of the same kind on the same question."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.errors import EvidenceError, InvalidInput
from ldncare.evidence.loader import data_root, load_evidence, load_evidence_from
from ldncare.evidence.models import Source, Statement
from ldncare.evidence.review import (
    months_before,
    stale_statements,
    superseded_sources,
)

DATA = Path(str(data_root()))
runner = CliRunner()


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA, tmp_path / "data"))


def _edit_statement(root: Path, sid: str, **changes: Any) -> None:
    for path in sorted((root / "statements").glob("*.yaml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in entries:
            if entry["id"] == sid:
                for key, value in changes.items():
                    if value is None:
                        entry.pop(key, None)
                    else:
                        entry[key] = value
                path.write_text(
                    yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8"
                )
                return
    raise AssertionError(f"{sid} not in statements/")


def _statement(sid: str, reviewed: date | None) -> Statement:
    return Statement(
        id=sid,
        topics=("ldn",),
        text="A statement about low-dose naltrexone.",
        citations=("label_naltrexone",),
        subjects=("ldn",),
        facets=("overview",),
        reviewed=reviewed,
    )


def _source(sid: str, year: int, kind: str, tags: tuple[str, ...] = ("ldn_efficacy",)) -> Source:
    return Source(
        id=sid,
        authors=f"{sid.capitalize()} A, Coauthor B",
        year=year,
        title=f"Study {sid}",
        evidence_type=kind,  # type: ignore[arg-type]
        grade="low",
        population="chronic_pain",
        evidence_for=tags,
    )


# --- every statement has a review date ---------------------------------------------------------


def test_every_shipped_statement_says_when_it_was_last_reviewed() -> None:
    ev = load_evidence()
    undated = [s.id for s in ev.statements.values() if s.reviewed is None]
    assert undated == []


def test_a_statement_without_a_review_date_stops_the_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit_statement(root, "ldn.offlabel.status", reviewed=None)
    with pytest.raises(EvidenceError, match=r"ldn\.offlabel\.status\): no review date; add"):
        load_evidence_from(root)


def test_a_review_date_that_is_not_a_date_stops_the_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit_statement(root, "ldn.offlabel.status", reviewed="last spring")
    with pytest.raises(EvidenceError, match=r"statements/ldn\.yaml\[0\]: reviewed: "):
        load_evidence_from(root)


# --- stale statements -------------------------------------------------------------------------


def test_statement_re_read_thirteen_months_ago_is_due_and_last_month_is_not() -> None:
    today = date(2027, 6, 15)
    old = _statement("ldn.old", date(2026, 5, 15))
    recent = _statement("ldn.recent", date(2027, 5, 15))
    due = stale_statements([old, recent], today)
    assert [d.id for d in due] == ["ldn.old"]
    assert due[0].due_since == date(2027, 5, 15)


def test_a_shorter_review_period_makes_more_statements_due() -> None:
    today = date(2027, 6, 15)
    recent = _statement("ldn.recent", date(2027, 1, 10))
    assert stale_statements([recent], today) == []
    assert [d.id for d in stale_statements([recent], today, months=3)] == ["ldn.recent"]


def test_a_review_period_below_one_month_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least 1 month, got 0"):
        stale_statements([], date(2027, 1, 1), months=0)


def test_months_before_the_end_of_a_long_month_lands_on_the_shorter_months_last_day() -> None:
    assert months_before(date(2027, 3, 31), 1) == date(2027, 2, 28)
    assert months_before(date(2028, 3, 31), 1) == date(2028, 2, 29)
    assert months_before(date(2027, 1, 15), 12) == date(2026, 1, 15)


@settings(max_examples=150, deadline=None)
@given(
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    reviewed=st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)),
    months=st.integers(min_value=1, max_value=60),
)
def test_a_statement_is_due_exactly_when_its_review_is_older_than_the_period(
    today: date, reviewed: date, months: int
) -> None:
    cutoff = months_before(today, months)
    # The cut-off is `months` calendar months back: between 28 and 31 days per month.
    assert timedelta(days=28 * months) <= today - cutoff <= timedelta(days=31 * months)
    due = stale_statements([_statement("s", reviewed)], today, months)
    assert bool(due) == (reviewed < cutoff)
    if due:
        # The review fell due after the review date and no later than today.
        assert reviewed < due[0].due_since <= today


# --- superseded sources -----------------------------------------------------------------------


def test_a_newer_meta_analysis_supersedes_older_reviews_on_the_same_question() -> None:
    sources = {
        s.id: s
        for s in (
            _source("rev2024", 2024, "systematic_review"),
            _source("rev2025", 2025, "systematic_review"),
            _source("trial2026", 2026, "rct"),
            _source("other2026", 2026, "systematic_review", tags=("pn_surgery",)),
        )
    }
    out = superseded_sources(sources)
    # A newer trial or a review on another question does not supersede a review.
    assert [(x.id, x.question, x.newer) for x in out] == [("rev2024", "ldn_efficacy", ("rev2025",))]


def test_sources_of_the_same_year_do_not_supersede_each_other() -> None:
    sources = {
        s.id: s
        for s in (
            _source("a2024", 2024, "systematic_review"),
            _source("b2024", 2024, "systematic_review"),
        )
    }
    assert superseded_sources(sources) == []


def test_shipped_base_flags_the_2024_reviews_as_superseded_by_the_2025_meta_analysis() -> None:
    ev = load_evidence()
    out = {(x.id, x.question): x.newer for x in superseded_sources(ev.sources)}
    for older in ("rassimariani2024", "vatvani2024"):
        assert "hegde2025" in out[(older, "ldn_efficacy")]
    assert not any(x_id == "hegde2025" for x_id, _ in out)


# --- the CLI ----------------------------------------------------------------------------------


def test_sources_stale_lists_every_statement_a_year_and_a_day_after_the_review() -> None:
    ev = load_evidence()
    last = max(s.reviewed for s in ev.statements.values() if s.reviewed is not None)
    day = date(last.year + 1, last.month, last.day) + timedelta(days=1)
    result = runner.invoke(app, ["sources", "--stale", "--json", "--as-of", day.isoformat()])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {d["statement"] for d in data["stale_statements"]} == set(ev.statements)
    assert {"source": "vatvani2024", "question": "ldn_efficacy"}.items() <= next(
        x for x in data["superseded_sources"] if x["source"] == "vatvani2024"
    ).items()


def test_sources_stale_on_the_review_day_lists_no_statement_but_still_the_superseded() -> None:
    ev = load_evidence()
    last = min(s.reviewed for s in ev.statements.values() if s.reviewed is not None)
    result = runner.invoke(app, ["sources", "--stale", "--as-of", last.isoformat()])
    assert result.exit_code == 0, result.stderr
    assert f"): 0 of {len(ev.statements)}" in result.stdout
    assert "vatvani2024 (systematic_review, 2024) on ldn_efficacy: newer hegde2025" in (
        result.stdout
    )


def test_sources_months_without_stale_is_a_clear_error() -> None:
    result = runner.invoke(app, ["sources", "--months", "6"])
    assert result.exit_code == 2
    assert "--months and --as-of apply only with --stale" in result.stderr
