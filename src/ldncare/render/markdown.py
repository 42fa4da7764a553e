"""Markdown rendering of the plan report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ldncare.core.plan_contract import PlanContract
from ldncare.render.report import Report, Sentence, build_report


def _cite(numbers: tuple[int, ...]) -> str:
    return f" [{', '.join(map(str, numbers))}]" if numbers else ""


def _sentence(s: Sentence) -> str:
    text = s.text.rstrip()
    return f"{text}{_cite(s.numbers)}"


def render_markdown(contract: PlanContract | Mapping[str, Any]) -> str:
    return report_markdown(build_report(contract))


def report_markdown(report: Report) -> str:
    out = [f"# {report.title}", "", f"_{report.subtitle}_", "", f"**{report.eligibility}**", ""]
    for section in report.sections:
        out += [f"## {section.title}", ""]
        if section.prose:
            out += [" ".join(_sentence(s) for s in section.sentences), ""]
            continue
        for s in section.sentences:
            line = f"- **{s.label}:** {_sentence(s)}" if s.label else f"- {_sentence(s)}"
            if s.detail:
                line += f"  \n  _Why:_ {s.detail} (rule `{s.basis}`)"
            out.append(line)
        out.append("")
        if section.title == "Patient-specific findings":
            out += _schedule(report)
    out += ["## References", ""]
    out += [f"{n}. {text}" for n, text in report.references]
    return "\n".join(out).rstrip() + "\n"


def _schedule(report: Report) -> list[str]:
    out = ["## Schedule", ""]
    if not report.schedule:
        out += [report.no_schedule, ""]
        return out
    out += [
        f"Low-dose naltrexone, once daily{_cite(report.schedule_numbers)}.",
        "",
        "| Step | From | To | Daily dose | When | How |",
        "|---:|---|---|---:|---|---|",
    ]
    for s in report.schedule:
        out.append(
            f"| {s.step} | {s.start_date.isoformat()} | {s.end_date.isoformat()} "
            f"| {s.dose_mg:g} mg | {s.time_of_day} | {s.instruction} |"
        )
    out += ["", f"**Review date:** {report.review_date}", ""]
    out += [
        *(f"- {note}" for note in report.schedule_notes),
        *([""] if report.schedule_notes else []),
    ]
    return out
