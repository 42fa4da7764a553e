"""Safety invariants of the answer engine over generated questions (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.ask import answer_question, ask_index

LDN = ["LDN", "low dose naltrexone", "low-dose naltrexone", "naltrexone", "low dose naltrexon"]
OPIOIDS = ["tramadol", "codeine", "methadone", "oxycodone", "morphine", "buprenorphine"]
OTHER_DRUGS = [
    "gabapentin",
    "pregabalin",
    "duloxetine",
    "venlafaxine",
    "amitriptyline",
    "nortriptyline",
    "Lyrica",
    "Cymbalta",
    "Neurontin",
]
ANTIDEPRESSANTS = [
    "duloxetine",
    "venlafaxine",
    "amitriptyline",
    "nortriptyline",
    "Cymbalta",
    "Effexor",
    "Elavil",
    "Pamelor",
]
OUTSIDE = ["trigeminal neuralgia", "CRPS", "migraine", "multiple sclerosis", "sciatica"]
ASKS = [
    "what dose",
    "how long until it works",
    "side effects",
    "is it safe",
    "warnings",
    "how does it work",
    "can I take it",
    "what else can I try",
    "evidence",
    "pregnancy",
    "before surgery",
    "kidney problems",
    "",
    "is it worth trying",
    "how do I start",
]
JOINERS = ["with", "and", "plus", "together with", "while on"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sections_and_citations_hold(question: str) -> None:
    answer = answer_question(question)
    if not answer.covered:
        assert not answer.sections and answer.closest_topics is not None
        return
    for part in ("from_the_guidelines", "key_considerations", "treatment_approach"):
        assert answer.sections[part], (question, part)
    numbers = {r.number for r in answer.references}
    assert numbers == set(range(1, len(numbers) + 1))
    known = ask_index().by_id
    for sentence in answer.sentences():
        assert sentence.citations and set(sentence.citations) <= numbers
        assert sentence.statement in known


@SETTINGS
@given(
    st.sampled_from(LDN + OTHER_DRUGS + ["pudendal neuralgia", "nerve pain down there", ""]),
    st.sampled_from(ASKS),
    st.sampled_from(["", "?", " for pudendal neuralgia?", " for my sitting pain", " pls"]),
)
def test_any_question_gets_three_sections_of_cited_statements_or_not_covered(
    subject: str, ask: str, tail: str
) -> None:
    _sections_and_citations_hold(f"{ask} {subject}{tail}".strip() or "LDN")


@SETTINGS
@given(
    st.sampled_from(["Can I take", "Is it safe to take", "Can a patient use", "ok to combine"]),
    st.sampled_from(LDN),
    st.sampled_from(JOINERS),
    st.sampled_from(OPIOIDS),
    st.booleans(),
)
def test_ldn_with_an_opioid_is_never_answered_yes(
    verb: str, ldn: str, joiner: str, opioid: str, opioid_first: bool
) -> None:
    pair = f"{opioid} {joiner} {ldn}" if opioid_first else f"{ldn} {joiner} {opioid}"
    answer = answer_question(f"{verb} {pair}?")
    assert answer.covered
    first = answer.sections["from_the_guidelines"][0].text
    assert not first.lower().startswith("yes"), first
    assert any("opioid" in s.text.lower() for s in answer.sentences())


@SETTINGS
@given(st.sampled_from(OUTSIDE), st.sampled_from(ASKS), st.sampled_from(LDN + OTHER_DRUGS + [""]))
def test_a_condition_outside_the_base_never_gets_pudendal_care(
    condition: str, ask: str, medicine: str
) -> None:
    answer = answer_question(f"{ask} {medicine} for {condition}".strip())
    ids = answer.statement_ids()
    assert not [i for i in ids if i.startswith("pn.")], ids
    if answer.covered:
        assert answer.scope is not None and condition.split()[0].lower() in answer.scope.lower()


@SETTINGS
@given(
    st.sampled_from(ANTIDEPRESSANTS),
    st.sampled_from(
        [
            "warnings",
            "What important warning should I know about",
            "risks of",
            "is it safe to take",
            "black box warning",
            "dangers of",
        ]
    ),
)
def test_antidepressant_warnings_lead_with_the_boxed_suicidality_warning(
    drug: str, ask: str
) -> None:
    answer = answer_question(f"{ask} {drug}")
    warnings = [s for s in answer.sentences() if s.statement.startswith("drug")]
    assert warnings and warnings[0].statement.endswith(".boxed"), answer.statement_ids()


@SETTINGS
@given(
    st.sampled_from(LDN),
    st.sampled_from(
        [
            "what dose of",
            "how do I start",
            "how long does it take for",
            "how does",
            "side effects of",
            "when do I take",
        ]
    ),
)
def test_a_specific_ldn_question_carries_no_pregnancy_or_surgery_advice(ldn: str, ask: str) -> None:
    ids = answer_question(f"{ask} {ldn}").statement_ids()
    assert not [i for i in ids if "pregnan" in i or "surgery" in i or "breastfeed" in i], ids
