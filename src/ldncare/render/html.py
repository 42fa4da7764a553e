"""HTML rendering of the plan report from a Jinja template (autoescaped)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ldncare.core.plan_contract import PlanContract, read_plan
from ldncare.render.report import build_report


@functools.cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("ldncare.render", "templates"),
        autoescape=select_autoescape(["html", "xml", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(contract: PlanContract | Mapping[str, Any]) -> str:
    plan = read_plan(contract)
    template = environment().get_template("report.html.j2")
    return template.render(report=build_report(plan), contract=plan)
