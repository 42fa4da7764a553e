"""Markdown of an :class:`~ldncare.core.answer.Answer` in the reference form."""

from __future__ import annotations

from ldncare.core.answer import GENERAL_NOTE, NOT_COVERED, SECTION_TITLES, Answer, Sentence

_SEVERITY = {"contraindication": "Contraindication", "warning": "Warning", "info": "Note"}


def _cite(numbers: tuple[int, ...]) -> str:
    return f" [{', '.join(map(str, numbers))}]" if numbers else ""


def _sentence(s: Sentence) -> str:
    return f"{s.text.rstrip()}{_cite(s.citations)}"


def _evidence_line(answer: Answer) -> list[str]:
    ev = answer.evidence
    if not ev:
        return []
    return ["", f"_ldncare evidence base {ev['version']}, reviewed up to {ev['reviewed_up_to']}._"]


def render_answer_markdown(answer: Answer) -> str:
    out = [f"# {answer.question}", ""]
    if not answer.covered:
        out += [f"**This question is {NOT_COVERED}.**", ""]
        out += [
            line for point in answer.not_covered_points for line in (f"Not covered: {point}.", "")
        ]
        if answer.closest_topics:
            out += ["Closest covered topics:", ""]
            out += [f"- {topic}" for topic in answer.closest_topics]
        if answer.sections:  # a patient's plan still shows (ask --patient)
            out += ["", *_patient_parts(answer)]
            out += _references(answer)
        out += _evidence_line(answer)
        return "\n".join(out).rstrip() + "\n"
    if answer.scope:
        out += [f"> **General answer:** {answer.scope}.", ""]
    for point in answer.not_covered_points:
        out += [f"> **Not covered:** {point}.", ""]
    for name, sentences in answer.sections.items():
        if name in _PATIENT_SECTIONS:
            out += _patient_section(answer, name, sentences)
            continue
        if not sentences:
            continue
        out += [f"## {SECTION_TITLES[name]}", ""]
        if name == "from_the_guidelines" and answer.eligibility:
            out += [f"_{GENERAL_NOTE}_", ""]
        if name == "from_the_guidelines":
            out += [" ".join(_sentence(s) for s in sentences), ""]
        else:
            out += [f"- {_sentence(s)}" for s in sentences]
            out.append("")
    out += _references(answer)
    out += _evidence_line(answer)
    return "\n".join(out).rstrip() + "\n"


_PATIENT_SECTIONS = ("patient_context", "patient_medicines")


def _patient_section(answer: Answer, name: str, sentences: tuple[Sentence, ...]) -> list[str]:
    out = [f"## {SECTION_TITLES[name]}", ""]
    if name == "patient_context" and answer.eligibility:
        out += [f"LDN screening for this patient: **{answer.eligibility_headline}**.", ""]
    for s in sentences:
        kind = _SEVERITY.get(s.severity or "", "Finding")
        out.append(f"- **{kind}:** {_sentence(s)}")
    out.append("")
    return out


def _patient_parts(answer: Answer) -> list[str]:
    out: list[str] = []
    for name, sentences in answer.sections.items():
        if name in _PATIENT_SECTIONS:
            out += _patient_section(answer, name, sentences)
    return out


def _references(answer: Answer) -> list[str]:
    return [
        "## References",
        "",
        *(
            f"{r.number}. {r.source.reference_text()} [{r.source.fit_text()}]"
            for r in answer.references
        ),
    ]
