"""The label-gap statements (``statements/label_gaps.yaml``, issue 15) say what their labels say
and no more: the "no boxed warning" fact must never be filed as a boxed warning, full-dose label
facts must say they are full-dose, and every source behind them can be found by a reader."""

from __future__ import annotations

from ldncare.core.question import BOXED
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.models import Statement


def _label_gaps() -> dict[str, Statement]:
    statements = load_evidence().statements
    return {sid: s for sid, s in statements.items() if sid.startswith("label_gaps.")}


def test_the_removed_box_is_not_filed_as_a_boxed_warning() -> None:
    # A statement topic-tagged as a boxed warning leads every list of warnings: the fact that
    # naltrexone has no box would then open "naltrexone warnings" as if it had one.
    statement = _label_gaps()["label_gaps.naltrexone.no_boxed_warning"]
    assert BOXED not in statement.topics
    assert "no longer carries a boxed" in statement.text
    assert "2013" in statement.text


def test_full_dose_side_effects_say_they_come_from_the_50_mg_dose() -> None:
    statement = _label_gaps()["label_gaps.naltrexone.full_dose_side_effects"]
    assert "50 mg" in statement.text
    assert "not from the low-dose" in statement.text


def test_the_pregabalin_maximum_names_its_condition() -> None:
    # 300 mg a day is the label's maximum in diabetic neuropathy only; 600 mg elsewhere.
    text = _label_gaps()["label_gaps.pregabalin.dpn_maximum"].text
    assert "diabetic peripheral neuropathy" in text
    assert "300 mg a day" in text
    assert "600 mg a day" in text


def test_every_source_behind_a_label_gap_can_be_found_by_a_reader() -> None:
    evidence = load_evidence()
    cited = {cid for s in _label_gaps().values() for cid in s.citations}
    assert cited, "no label-gap statements loaded"
    unfindable = sorted(
        cid
        for cid in cited
        if not (
            evidence.sources[cid].url or evidence.sources[cid].pmid or evidence.sources[cid].doi
        )
    )
    assert unfindable == []
