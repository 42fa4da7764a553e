"""HTML rendering of the plan report from a Jinja template (autoescaped)."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ldncare.render.report import build_report


@functools.cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("ldncare.render", "templates"),
        autoescape=select_autoescape(["html", "xml", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(contract: dict[str, Any]) -> str:
    template = environment().get_template("report.html.j2")
    return template.render(report=build_report(contract), contract=contract)
