"""The printable patient handout: the plan's schedule and the patient guidance as a PDF.

HTML from a Jinja template, turned into PDF by WeasyPrint (needs Pango; see
scripts/ci-system-deps.sh). The chart is the same inline SVG as on the pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ldncare.core.diary import DiaryEntry
from ldncare.core.plan_contract import PlanContract, read_plan
from ldncare.evidence.loader import load_evidence
from ldncare.render.report import build_report
from ldncare.web.charts import diary_chart_svg
from ldncare.web.templating import render_text
from ldncare.web.views import patient_guide


def handout_html(
    contract: PlanContract | Mapping[str, Any],
    *,
    version: int,
    diary: Sequence[DiaryEntry] = (),
) -> str:
    plan = read_plan(contract)
    return render_text(
        "handout.html.j2",
        contract=plan,
        report=build_report(plan),
        guide=patient_guide(load_evidence()),
        who=plan.patient.name or plan.patient.id,
        version=version,
        chart=diary_chart_svg(diary, plan, title="Pain and sitting tolerance") if diary else "",
    )


def handout_pdf(
    contract: PlanContract | Mapping[str, Any],
    *,
    version: int,
    diary: Sequence[DiaryEntry] = (),
) -> bytes:
    from weasyprint import HTML

    html = handout_html(contract, version=version, diary=diary)
    pdf = HTML(string=html).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf
