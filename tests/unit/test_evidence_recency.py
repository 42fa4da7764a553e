"""Recency claims are computed from the bibliography and kept true as sources are added.

"The most recent review" written in words goes stale the day a newer review is added, so the
loader refuses it; ``{latest_review:<question>}`` is filled from the sources instead, and a text
that names the latest review must cite it, so adding a newer review stops the load until the
text around the placeholder has been revised.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.errors import EvidenceError
from ldncare.evidence.loader import data_root, load_evidence, load_evidence_from
from ldncare.evidence.models import Source
from ldncare.evidence.recency import check_no_written_recency, latest, resolve

DATA = Path(str(data_root()))


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA, tmp_path / "data"))


def _edit(path: Path, entry_id: str, **changes: Any) -> None:
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    for entry in entries:
        if entry["id"] == entry_id:
            entry.update(changes)
            break
    else:
        raise AssertionError(f"{entry_id} not in {path.name}")
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _add_source(root: Path, **fields: Any) -> None:
    entry = {
        "authors": "Newer A, Other B",
        "title": "A newer meta-analysis of LDN",
        "journal": "Pain",
        "evidence_type": "systematic_review",
        "grade": "low",
        "population": "chronic_pain",
        "evidence_for": ["ldn_efficacy"],
        **fields,
    }
    (root / "sources_newer.yaml").write_text(yaml.safe_dump([entry], sort_keys=False), "utf-8")


def _src(
    sid: str, year: int, kind: str = "systematic_review", tags: tuple[str, ...] = ("q",)
) -> Source:
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


# --- the shipped base -------------------------------------------------------------------------


def test_best_available_evidence_names_the_newest_ldn_review_computed_from_the_sources() -> None:
    ev = load_evidence()
    reviews = [
        s
        for s in ev.sources.values()
        if s.evidence_type == "systematic_review" and "ldn_efficacy" in s.evidence_for
    ]
    newest = max(s.year for s in reviews)
    newest_ids = {s.id for s in reviews if s.year == newest}
    statement = ev.statements["ldn.evidence.best_available"]
    assert newest_ids <= set(statement.citations)
    assert f"{newest})" in statement.text
    assert "{" not in statement.text, "every placeholder is filled"


def test_no_loaded_text_keeps_an_unfilled_recency_placeholder() -> None:
    ev = load_evidence()
    texts = [s.text for s in ev.statements.values()]
    texts += [r.rationale for r in ev.rules.values()] + [r.message for r in ev.rules.values()]
    texts += [c.text for c in ev.care]
    assert not [t for t in texts if re.search(r"\{latest_", t)]


def test_2025_meta_analysis_sits_beside_the_2024_reviews_in_the_efficacy_summary() -> None:
    statement = load_evidence().statements["ldn.evidence.best_available"]
    assert statement.citations[0] == "hegde2025"
    assert {"vatvani2024", "rassimariani2024"} <= set(statement.citations)
    assert "Hegde et al. 2025" in statement.text


# --- broken copies: written recency is refused, placeholders stay honest ------------------------


def test_statement_calling_reviews_the_most_recent_in_words_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root / "statements" / "ldn.yaml",
        "ldn.evidence.chronic_pain_review",
        text="The most recent systematic reviews are from 2024 and find no effect of LDN.",
    )
    with pytest.raises(EvidenceError, match=r"statement 'ldn.evidence.chronic_pain_review': says"):
        load_evidence_from(root)


def test_rule_rationale_naming_the_latest_trials_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root / "rules.yaml",
        "ldn.indication.neuropathic",
        rationale="The latest randomised trials were negative.",
    )
    with pytest.raises(EvidenceError, match=r"rule 'ldn.indication.neuropathic' rationale"):
        load_evidence_from(root)


def test_adding_a_newer_review_stops_the_load_until_the_summary_cites_it(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _add_source(root, id="newer2026", year=2026)
    # Someone encodes a newer review in a statement of its own ...
    _edit(
        root / "statements" / "ldn.yaml", "ldn.evidence.chronic_pain_meta", citations=["newer2026"]
    )
    # ... and every text that claims to know the latest review must now be revised.
    with pytest.raises(EvidenceError) as err:
        load_evidence_from(root)
    assert "ldn.evidence.best_available" in str(err.value)
    assert "newer2026" in str(err.value)
    # Once the summary (and the PN rule that points to the latest review) cite it, it loads and
    # the computed phrase names the new review.
    _edit(
        root / "statements" / "ldn.yaml",
        "ldn.evidence.best_available",
        citations=["newer2026", "hegde2025", "rassimariani2024", "vatvani2024"],
    )
    _edit(
        root / "rules.yaml",
        "ldn.indication.pn",
        citations=["newer2026", "hegde2025", "rassimariani2024", "vatvani2024", "label_naltrexone"],
    )
    ev = load_evidence_from(root)
    assert "Newer et al. 2026" in ev.statements["ldn.evidence.best_available"].text
    assert "Hegde" not in ev.rules["ldn.indication.pn"].rationale


def test_a_newer_review_on_another_question_does_not_disturb_ldn_text(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _add_source(root, id="gaba2026", year=2026, evidence_for=["gabapentinoid_efficacy"])
    _edit(root / "statements" / "neuropathic_pain_drugs.yaml", "np.nnt", citations=["gaba2026"])
    ev = load_evidence_from(root)
    assert "Hegde et al. 2025" in ev.statements["ldn.evidence.best_available"].text


def test_unknown_placeholder_kind_is_named(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root / "statements" / "ldn.yaml",
        "ldn.evidence.chronic_pain_meta",
        text="See {latest_guideline:ldn_efficacy} for more.",
    )
    with pytest.raises(EvidenceError, match="unknown recency placeholder kind 'guideline'"):
        load_evidence_from(root)


def test_placeholder_for_a_question_no_source_answers_is_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root / "statements" / "ldn.yaml",
        "ldn.evidence.chronic_pain_meta",
        text="See {latest_review:pudendal_surgery} for more.",
    )
    with pytest.raises(EvidenceError, match="tagged evidence_for 'pudendal_surgery'"):
        load_evidence_from(root)


# --- the mechanism in isolation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The most recent evidence is two reviews.",
        "the latest meta-analysis found nothing",
        "Newest trials disagree.",
        "The most up-to-date guideline says so.",
        "the most recent and strongest evidence is pooled",
    ],
)
def test_written_recency_claims_about_evidence_are_refused(text: str) -> None:
    with pytest.raises(EvidenceError, match="in words"):
        check_no_written_recency(text, "here")


@pytest.mark.parametrize(
    "text",
    [
        "When the stop date is unknown, take the latest date on the record.",
        "An opioid stopped too recently conflicts with naltrexone.",
        "A 2018 review judged it had been evaluated only recently.",
        "The response is below 30 % but the recent diary doses are low.",
        "Use the most recent eGFR result and the latest ALT data on the record.",
        "See {latest_review:q} first.",
    ],
)
def test_ordinary_uses_of_recent_and_latest_are_accepted(text: str) -> None:
    check_no_written_recency(text, "here")


def test_tie_on_the_newest_year_names_every_review_of_that_year() -> None:
    sources = {s.id: s for s in (_src("alpha", 2024), _src("beta", 2024), _src("old", 2019))}
    out = resolve("Read {latest_review:q}.", ("alpha", "beta", "old"), sources, "here")
    assert out == (
        "Read the most recent systematic reviews cited here (Alpha et al. 2024; Beta et al. 2024)."
    )


def test_latest_trial_picks_randomised_trials_only() -> None:
    sources = {
        s.id: s
        for s in (
            _src("pilot", 2023, "nonrandomised_trial"),
            _src("rct", 2021, "rct"),
            _src("review", 2025),
        )
    }
    assert [s.id for s in latest(sources, "trial", "q", "here")] == ["rct"]


# --- properties -----------------------------------------------------------------------------

_YEARS = st.integers(min_value=1990, max_value=2030)


@settings(max_examples=200, deadline=None)
@given(
    years=st.lists(_YEARS, min_size=1, max_size=8),
    cited=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_placeholder_names_exactly_the_newest_reviews_or_refuses_when_one_is_uncited(
    years: list[int], cited: list[bool]
) -> None:
    sources = {f"s{i}": _src(f"s{i}", y) for i, y in enumerate(years)}
    citations = tuple(sid for i, sid in enumerate(sources) if cited[i])
    newest = max(years)
    newest_ids = {sid for sid, s in sources.items() if s.year == newest}
    if newest_ids <= set(citations):
        out = resolve("{latest_review:q}", citations, sources, "here")
        named = set(re.findall(r"(S\d+) et al\. (\d{4})", out))
        assert named == {(sid.capitalize(), str(newest)) for sid in newest_ids}
    else:
        with pytest.raises(EvidenceError, match="which it does not cite"):
            resolve("{latest_review:q}", citations, sources, "here")


_WORDS = st.sampled_from(
    [
        "the",
        "pooled",
        "systematic",
        "randomised",
        "small",
        "2024",
        "two",
        "of",
        "LDN",
        "fibromyalgia",
    ]
)
_NOUNS = st.sampled_from(
    ["evidence", "review", "reviews", "meta-analysis", "trials", "RCT", "guideline"]
)
_CLAIMS = st.sampled_from(["most recent", "latest", "newest", "Most Recent", "most up-to-date"])


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(_WORDS, max_size=6),
    claim=_CLAIMS,
    between=st.lists(_WORDS, max_size=3),
    noun=_NOUNS,
)
def test_any_recency_claim_about_evidence_is_caught_whatever_surrounds_it(
    before: list[str], claim: str, between: list[str], noun: str
) -> None:
    text = " ".join([*before, claim, *between, noun]) + "."
    with pytest.raises(EvidenceError):
        check_no_written_recency(text, "here")
