"""Second review of `ldncare ask` (issue 15): classes and "the alternatives" answered per
medicine, older adults, uncovered points said plainly, comparisons, other conditions, form."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question, ask_index, understand_question
from ldncare.core.question import stated_age
from ldncare.render.answer_markdown import render_answer_markdown


def _text(question: str) -> str:
    return " ".join(s.text for s in answer_question(question).sentences()).lower()


def _subjects_of_sentences(question: str) -> set[str]:
    by_id = ask_index().by_id
    out: set[str] = set()
    for sentence in answer_question(question).sentences():
        if sentence.statement in by_id:
            out |= set(by_id[sentence.statement].subjects)
    return out


def test_clinician_asking_for_the_boxed_warnings_of_the_alternatives_hears_each_medicine() -> None:
    text = _text("What are the boxed warnings for the alternatives to LDN?")
    for drug in ("duloxetine", "venlafaxine", "amitriptyline", "nortriptyline", "tramadol"):
        assert f"{drug} carries a boxed warning" in text
    # Not an answer about LDN itself.
    assert "naltrexone must not be given" not in text


def test_side_effects_of_snris_are_given_for_duloxetine_and_venlafaxine_not_ldn() -> None:
    subjects = _subjects_of_sentences("side effects of SNRIs")
    assert {"duloxetine", "venlafaxine"} <= subjects
    assert "ldn" not in subjects


def test_seventy_year_old_asking_for_the_safest_pill_gets_the_beers_and_older_people_warnings() -> (
    None
):
    answer = answer_question("I'm 70, which nerve pain pill is safest for me?")
    assert answer.covered
    text = " ".join(s.text for s in answer.sentences())
    assert "Beers Criteria" in text and "older people" in text


def test_patient_who_missed_a_dose_is_told_plainly_it_is_not_covered_and_not_given_titration() -> (
    None
):
    answer = answer_question("What happens if I miss a dose of LDN or stop it suddenly?")
    assert any("missed dose of LDN" in p for p in answer.not_covered_points)
    text = " ".join(s.text for s in answer.sentences())
    assert "does not lead to physical or psychological dependence" in text
    assert "1 to 2 mg" not in text
    assert "> **Not covered:**" in render_answer_markdown(answer)
    assert answer.to_contract()["not_covered_points"] == list(answer.not_covered_points)


def test_pain_worse_at_first_is_not_covered_and_answered_only_with_side_effects_and_timing() -> (
    None
):
    answer = answer_question("can ldn make my pain worse at first?")
    assert any("make pain worse" in p for p in answer.not_covered_points)
    text = " ".join(s.text for s in answer.sentences()).lower()
    assert "vivid dreams" in text and "weeks" in text
    assert "pelvic floor" not in text and "fda-approved" not in text


def test_ldn_versus_gabapentin_gives_each_side_and_says_no_head_to_head_trial_is_held() -> None:
    answer = answer_question("Is LDN better than gabapentin for PN?")
    assert any(
        "head-to-head comparison of LDN and gabapentin" in p for p in answer.not_covered_points
    )
    ids = set(answer.statement_ids())
    assert "drug.gabapentin.nnt" in ids
    assert any(i.startswith("ldn.evidence") for i in ids)


def test_ldn_versus_amitriptyline_leads_with_the_head_to_head_trial() -> None:
    answer = answer_question("LDN versus amitriptyline for nerve pain")
    assert answer.not_covered_points == ()
    assert answer.sections["from_the_guidelines"][0].statement == (
        "ldn.evidence.diabetic_neuropathy"
    )


def test_whether_ldn_works_for_trigeminal_neuralgia_is_not_covered() -> None:
    for q in ("Does LDN work for trigeminal neuralgia?", "LDN for migraine?", "Can LDN help CRPS?"):
        assert not answer_question(q).covered, q


def test_source_line_uses_an_before_expert_review() -> None:
    md = render_answer_markdown(answer_question("Does pelvic floor physical therapy help PN?"))
    assert "a expert" not in md
    assert "an expert review" in md


@given(st.integers(min_value=18, max_value=105))
def test_a_stated_age_is_read_in_its_common_phrasings(age: int) -> None:
    for phrase in (f"I'm {age}", f"a {age}-year-old", f"aged {age}", f"{age} years old"):
        assert stated_age(f"{phrase}, which pill?") == age, phrase


@settings(max_examples=25, deadline=None)
@given(
    cls=st.sampled_from(["SNRIs", "tricyclics", "gabapentinoids", "the alternatives"]),
    ask=st.sampled_from(["side effects of", "warnings for", "interactions of"]),
)
def test_a_class_asked_a_property_is_answered_about_its_medicines_not_ldn(
    cls: str, ask: str
) -> None:
    question = understand_question(f"{ask} {cls}")
    assert question.per_drug
    assert "ldn" not in question.per_drug
    subjects = _subjects_of_sentences(f"{ask} {cls}")
    assert set(question.per_drug) & subjects


@settings(max_examples=25, deadline=None)
@given(
    condition=st.sampled_from(
        ["trigeminal neuralgia", "migraine", "CRPS", "sciatica", "multiple sclerosis"]
    ),
    phrasing=st.sampled_from(
        ["Does LDN work for {}?", "LDN dose for {}", "can low dose naltrexone help my {}"]
    ),
)
def test_no_answer_about_another_condition_carries_pudendal_care(
    condition: str, phrasing: str
) -> None:
    answer = answer_question(phrasing.format(condition))
    text = " ".join(s.text for s in answer.sentences()).lower()
    for word in ("pudendal", "pelvic floor", "cushion", "nerve block"):
        assert word not in text
