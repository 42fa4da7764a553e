"""What a patient's plan adds to an answer (``ldncare ask --patient``), pure and without I/O.

An answer about one patient must not read as a general answer with the patient as a footnote:
"Can I start LDN for this patient?" for a patient on tramadol has to say *not recommended*
before any general dosing text (review round 2, a30, a69), and "Is this patient's gabapentin
dose appropriate?" has to show the plan's own finding that 1,800 mg a day is above the kidney
maximum (a40). So the plan's LDN findings come first, most severe first, and the medicines the
plan judged for this patient follow: those the patient already takes (their advice: reduce,
switch ...), those the question names, and, when the question asks what else to use, every
option with its verdict. Every line is a rule's own message from the plan contract, with the
rule id and its citations, so it traces to the evidence base like any other sentence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ldncare.core.plan_contract import Option, OptionReason, PlanLike, ldn_of, options_of
from ldncare.core.question import CONDITION_SUBJECTS

#: Rules that only say which line of treatment a medicine is: not about this patient.
_GENERIC_RULES = frozenset({"option.first_line", "option.second_line"})
#: "Already taking X": the reminder that closes what is said about a current medicine.
_TAKEN_RULES = frozenset({"option.current.taking", "option.current.taking_conflict"})
#: Verdicts that carry a concern for this patient.
_CONCERNS = frozenset({"current", "caution", "avoid"})
_SEVERITY_ORDER = {"contraindication": 0, "warning": 1, "info": 2}
_SUITABILITY_ORDER = {"current": 0, "preferred": 1, "suitable": 2, "caution": 3, "avoid": 4}
_SUITABILITY_WORDS = {
    "current": "already taken",
    "preferred": "preferred for this patient",
    "suitable": "suitable for this patient",
    "caution": "use with caution in this patient",
    "avoid": "avoid in this patient",
}
_ADVICE_WORDS = {
    "reduce": "reduce the dose",
    "switch": "switch to another medicine",
    "review": "review",
    "optimise": "optimise within the maximum",
    "continue": "continue",
}
#: What a question asks when it wants the patient's choice among the medicines.
_CHOICE_FACETS = frozenset({"alternatives", "comparison", "treatment"})


@dataclass(frozen=True)
class PatientLine:
    """One line about the patient: a rule's message, its id, its citations and severity."""

    text: str
    rule: str
    citations: tuple[str, ...]
    severity: str


def ldn_lines(plan: PlanLike) -> tuple[str, list[PatientLine]]:
    """The LDN eligibility and its findings, contraindications first (order kept within one
    severity, which is the screening's own order)."""
    ldn = ldn_of(plan)
    findings = sorted(ldn.findings, key=lambda f: _SEVERITY_ORDER.get(f.severity, 3))
    return ldn.eligibility, [
        PatientLine(f.message, f.rule, tuple(f.citations), f.severity) for f in findings
    ]


def medicine_lines(plan: PlanLike, understood: Mapping[str, Any] | None) -> list[PatientLine]:
    """The plan's verdict on the medicines this answer is about (see the module docstring)."""
    options = options_of(plan)
    subjects = set(_strings(understood, "subjects"))
    asked = set(_strings(understood, "asked"))
    every = bool(asked & _CHOICE_FACETS)
    chosen: list[tuple[Option, bool]] = []  # (option, all its reasons rather than one)
    for option in sorted(options, key=lambda o: _SUITABILITY_ORDER.get(o.suitability, 5)):
        named = option.drug in subjects
        if option.suitability == "current" or named:
            chosen.append((option, True))
        elif every:
            # What is wrong for this patient is never cut to one line (review round 2: the
            # falls warnings of an 84-year-old were dropped); a suitable option gets one.
            chosen.append((option, option.suitability in _CONCERNS))
    lines: list[PatientLine] = []
    for option, whole in chosen:
        specific = sorted(
            (r for r in option.reasons if r.rule not in _GENERIC_RULES), key=_reason_order
        )
        reasons = (specific or option.reasons[:1]) if whole else (specific or option.reasons)[:1]
        for i, reason in enumerate(reasons):
            # The verdict once, on the first line of each medicine; its name on every line.
            label = _label(option) if i == 0 else option.name
            lines.append(
                PatientLine(
                    f"{label}: {reason.message}",
                    reason.rule,
                    tuple(reason.citations),
                    _severity(option, reason),
                )
            )
    return lines


def medicines_first(understood: Mapping[str, Any] | None) -> bool:
    """A question about other medicines only ("Is this patient's gabapentin dose right?")
    shows the plan's verdict on them before the LDN screening."""
    subjects = set(_strings(understood, "subjects"))
    return bool(subjects) and "ldn" not in subjects and not subjects <= CONDITION_SUBJECTS


def _reason_order(reason: OptionReason) -> int:
    # What is wrong with the current dose first ("above the kidney maximum: reduce"), the
    # reminder that it is already taken (and what to do about it) last.
    if reason.rule in _TAKEN_RULES:
        return 2
    return 0 if reason.rule.startswith("option.current.") else 1


def _label(option: Option) -> str:
    words = _SUITABILITY_WORDS.get(option.suitability, option.suitability)
    advice = option.current.advice if option.current is not None else None
    if advice is not None:
        words = f"{words}; advice: {_ADVICE_WORDS.get(advice, advice)}"
    return f"{option.name} ({words})"


def _severity(option: Option, reason: OptionReason) -> str:
    """A concern for this patient (a specific reason on a medicine taken, to use with caution
    or to avoid) is a warning; which line of treatment a medicine is, or that it is already
    taken, is a note."""
    if reason.rule in _GENERIC_RULES or reason.rule in _TAKEN_RULES:
        return "info"
    return "warning" if option.suitability in _CONCERNS else "info"


def _strings(understood: Mapping[str, Any] | None, key: str) -> Sequence[str]:
    value = understood.get(key, ()) if understood else ()
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []
