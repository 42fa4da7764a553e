"""The Nantes criteria checklist for pudendal neuralgia (labat2008)."""

from __future__ import annotations

import pytest

from ldncare.core.nantes import assess_nantes
from ldncare.errors import InvalidInput
from ldncare.evidence.models import Evidence
from ldncare.evidence.nantes import NantesCriteria
from tests.options_support import evidence

ESSENTIAL = [
    "pudendal_territory",
    "worse_sitting",
    "not_woken_at_night",
    "no_sensory_loss",
    "block_relieves",
]
EXCLUSION = [
    "only_coccygeal_gluteal_hypogastric",
    "pruritus",
    "only_paroxysmal",
    "imaging_explains",
]


@pytest.fixture(scope="module")
def criteria() -> NantesCriteria:
    ev: Evidence = evidence()
    assert ev.nantes is not None
    return ev.nantes


def full(**overrides: bool | None) -> dict[str, bool | None]:
    answers: dict[str, bool | None] = {k: True for k in ESSENTIAL}
    answers.update({k: False for k in EXCLUSION})
    answers.update(overrides)
    return answers


def test_data_has_five_essential_four_exclusion_eight_complementary(
    criteria: NantesCriteria,
) -> None:
    assert [i.id for i in criteria.of_kind("essential")] == ESSENTIAL
    assert [i.id for i in criteria.of_kind("exclusion")] == EXCLUSION
    assert len(criteria.of_kind("complementary")) == 8
    assert criteria.citations == ("labat2008",)


def test_all_essential_and_no_exclusion_meets_criteria(criteria: NantesCriteria) -> None:
    result = assess_nantes(full(after_defecation=True), criteria)
    assert result.status == "criteria_met"
    assert result.complementary_present == ("after_defecation",)
    assert "fits pudendal neuralgia" in result.meaning
    assert result.citations == ("labat2008",)


def test_pain_waking_at_night_means_not_met(criteria: NantesCriteria) -> None:
    result = assess_nantes(full(not_woken_at_night=False), criteria)
    assert result.status == "criteria_not_met"
    assert result.essential_absent == ("not_woken_at_night",)


def test_exclusion_wins_over_everything(criteria: NantesCriteria) -> None:
    result = assess_nantes(full(imaging_explains=True, worse_sitting=False), criteria)
    assert result.status == "exclusion_present"
    assert result.exclusions_present == ("imaging_explains",)


def test_no_block_yet_is_incomplete_and_names_the_item(criteria: NantesCriteria) -> None:
    answers = full(block_relieves=None)
    result = assess_nantes(answers, criteria)
    assert result.status == "incomplete"
    assert result.unanswered == ("block_relieves",)


def test_missing_exclusion_answers_are_incomplete(criteria: NantesCriteria) -> None:
    answers = {k: True for k in ESSENTIAL}
    result = assess_nantes(answers, criteria)
    assert result.status == "incomplete"
    assert set(result.unanswered) == set(EXCLUSION)


def test_unknown_item_is_refused_naming_accepted_ids(criteria: NantesCriteria) -> None:
    with pytest.raises(InvalidInput) as err:
        assess_nantes({"sits_badly": True}, criteria)
    assert "sits_badly" in str(err.value) and "worse_sitting" in str(err.value)


def test_non_boolean_answer_is_refused(criteria: NantesCriteria) -> None:
    with pytest.raises(InvalidInput):
        assess_nantes({"worse_sitting": "yes"}, criteria)  # type: ignore[dict-item]


def test_missing_criteria_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput):
        assess_nantes({}, None)


def test_contract_is_json_ready(criteria: NantesCriteria) -> None:
    out = assess_nantes(full(), criteria).to_contract()
    assert out["status"] == "criteria_met" and isinstance(out["essential_present"], list)
