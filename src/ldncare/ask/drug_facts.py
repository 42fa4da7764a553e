"""Drug monograph facts rendered as statements, so ``ldncare ask`` can retrieve and cite them.

Each monograph (``evidence/data/drugs/*.yaml``) becomes a few statements with ids such as
``drug.gabapentin.dosing`` or ``drug.amitriptyline.side_effects``. The words are built only from
the monograph's own cited fields, and each statement carries exactly those fields' citations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from decimal import Decimal

from ldncare.core.quantity import Dose, format_decimal
from ldncare.evidence.models import Statement
from ldncare.evidence.monographs import CitedText, Monograph, NumberNeeded

_CLASS_LABEL = {
    "gabapentinoid": "gabapentinoid",
    "snri": "SNRI",
    "tca": "tricyclic antidepressant",
    "opioid": "opioid",
    "topical": "topical treatment",
}
#: The question facets each monograph part answers.
_FACETS: dict[str, tuple[str, ...]] = {
    "dosing": ("dose", "overview"),
    "renal": ("organ", "dose"),
    "hepatic": ("organ", "warnings"),
    "contraindications": ("warnings", "overview"),
    "cautions": ("warnings",),
    "interactions": ("interactions",),
    "side_effects": ("side_effects", "overview"),
    "nnt": ("evidence", "overview"),
    "with_ldn": ("interactions",),
    # A label's lower maximum for a group (kidney, liver, older age): answers questions about
    # that group's dose and safety.
    "dose_limits": ("organ", "dose", "warnings"),
}
_ORGAN = re.compile(r"creatinine|kidney|renal|hepatic|liver|cirrhosis", re.IGNORECASE)
#: Words that make a monograph statement a warning for older people ("in older people", "the
#: Beers Criteria advise avoiding it at 65 and over"): tagged ``elderly`` for age questions.
_OLDER = re.compile(r"older (?:people|adults|patients)|elderly|65 and over|beers", re.IGNORECASE)
#: Words that name what a monograph statement is about, so a question naming the same thing
#: ("with high blood pressure", "misused", "after a heart attack") finds it first (review 4).
_TEXT_TOPICS = {
    "blood-pressure": re.compile(r"blood pressure|hypertens", re.IGNORECASE),
    "misuse": re.compile(r"misuse|abuse", re.IGNORECASE),
    "heart": re.compile(r"myocardial|heart attack|arrhythmi|cardiac", re.IGNORECASE),
    "thyroid": re.compile(r"thyroid", re.IGNORECASE),
    "seizures": re.compile(r"seizure|convuls", re.IGNORECASE),
}
_TIME = {"bedtime": " at bedtime", "morning": " in the morning", "divided": "", "any": ""}


def _cites(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for g in groups for c in g))


def _days(n: int) -> str:
    return "every day" if n == 1 else "every week" if n == 7 else f"every {n} days"


def _dose(d: Dose) -> str:
    return str(d)


def _number(n: NumberNeeded, what: str) -> str:
    ci = ""
    if n.ci_low is not None and n.ci_high is not None:
        ci = f" (95 % CI {_dec(n.ci_low)} to {_dec(n.ci_high)})"
    return f"{what} {_dec(n.value)}{ci} for {n.applies_to}"


def _dec(value: Decimal) -> str:
    return format_decimal(Decimal(value))


def _statement(
    mono: Monograph, part: str, topics: tuple[str, ...], text: str, cites: tuple[str, ...]
) -> Statement:
    return Statement(
        id=f"drug.{mono.id}.{part}",
        topics=("drug", mono.id, mono.drug_class, *topics),
        text=text,
        citations=cites,
        population="neuropathic_pain" if part in {"dosing", "nnt"} else "general",
        subjects=(mono.id, mono.drug_class, *(("ldn",) if part == "with_ldn" else ())),
        facets=_FACETS[part],
    )


def _listing(
    mono: Monograph, label: str, items: tuple[CitedText, ...]
) -> tuple[str, tuple[str, ...]]:
    body = " ".join(i.text.rstrip(".") + "." for i in items)
    return f"{mono.name} {label}: {body}", _cites(*(i.citations for i in items))


def drug_statements(mono: Monograph) -> Iterator[Statement]:
    """The statements one monograph contributes to the ask index."""
    label = _CLASS_LABEL.get(mono.drug_class, mono.drug_class)
    dosing: list[str] = []
    cites: list[tuple[str, ...]] = []
    if mono.titration is not None:
        t = mono.titration
        text = f"start {_dose(t.start_dose)}{_TIME[t.time_of_day]}"
        if t.step_dose is not None and t.step_days is not None:
            text += f", increase by {_dose(t.step_dose)} {_days(t.step_days)}"
        text += f" to {_dose(t.target_dose)} a day"
        dosing.append(text)
        cites.append(t.citations)
    if mono.usual_target is not None:
        u = mono.usual_target
        dosing.append(f"usual effective dose {_dose(u.min)} to {_dose(u.max)} a day")
        cites.append(u.citations)
    if mono.max_daily_dose is not None:
        dosing.append(f"maximum {_dose(mono.max_daily_dose.value)} a day")
        cites.append(mono.max_daily_dose.citations)
    if mono.regimen is not None:
        dosing.append(mono.regimen.text.rstrip("."))
        cites.append(mono.regimen.citations)
    if dosing:
        text = f"{mono.name} ({mono.line}-line {label}) dosing: {'; '.join(dosing)}."
        yield _statement(mono, "dosing", ("dosing", "titration"), text, _cites(*cites))
    if mono.renal_bands:
        bands = "; ".join(
            f"{b.label}: {_dose(b.daily_min)} to {_dose(b.daily_max)} a day, {b.frequency}"
            for b in sorted(mono.renal_bands, key=lambda b: -b.min_crcl)
        )
        yield _statement(
            mono,
            "renal",
            ("kidney", "dosing"),
            f"{mono.name} dose by kidney function: {bands}.",
            _cites(*(b.citations for b in mono.renal_bands)),
        )
    if mono.dose_limits:
        limits = "; ".join(
            f"{d.group}: at most {_dose(d.max_daily)} a day, {d.frequency}"
            for d in mono.dose_limits
        )
        group_topics = {
            "crcl_below": ("kidney", "renal"),
            "age_over": ("elderly",),
            "condition": ("liver",),
        }
        groups = tuple(dict.fromkeys(t for d in mono.dose_limits for t in group_topics[d.when]))
        yield _statement(
            mono,
            "dose_limits",
            ("dosing", "dose-limit", "safety", *groups),
            f"{mono.name} lower daily maximum for some patients: {limits}.",
            _cites(*(d.citations for d in mono.dose_limits)),
        )
    for part, heading, topics, items in (
        ("hepatic", "and the liver", ("liver", "safety"), mono.hepatic),
        (
            "contraindications",
            "contraindications",
            ("contraindication", "safety"),
            mono.contraindications,
        ),
        ("cautions", "cautions", ("safety",), mono.cautions),
        ("interactions", "interactions", ("interaction", "safety"), mono.interactions),
        ("side_effects", "side effects", ("side-effects",), mono.side_effects),
    ):
        if items:
            text, item_cites = _listing(mono, heading, items)
            statement = _statement(mono, part, topics, text, item_cites)
            named = tuple(t for t, words in _TEXT_TOPICS.items() if words.search(text))
            if named:
                statement = statement.model_copy(update={"topics": (*statement.topics, *named)})
            if _OLDER.search(text):
                statement = statement.model_copy(update={"topics": (*statement.topics, "elderly")})
            if part == "cautions" and _ORGAN.search(text):
                # A caution about kidney or liver function also answers organ questions.
                statement = statement.model_copy(update={"facets": (*statement.facets, "organ")})
            yield statement
    numbers = [n for n in (mono.nnt, mono.nnh) if n is not None]
    if numbers:
        parts = []
        if mono.nnt is not None:
            parts.append(_number(mono.nnt, "number needed to treat"))
        if mono.nnh is not None:
            parts.append(_number(mono.nnh, "number needed to harm"))
        text = f"{mono.name}: {'; '.join(parts)}."
        yield _statement(
            mono, "nnt", ("evidence", "nnt"), text, _cites(*(n.citations for n in numbers))
        )
    if mono.combination_note is not None:
        note = mono.combination_note
        yield _statement(
            mono,
            "with_ldn",
            ("ldn", "interaction", "combination"),
            f"{mono.name} with LDN: {note.text}",
            note.citations,
        )


def all_drug_statements(monographs: Iterable[Monograph]) -> list[Statement]:
    return [s for mono in monographs for s in drug_statements(mono)]
