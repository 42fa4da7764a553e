"""The Jinja environment of the web app (autoescaped) and a helper that renders a page."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ldncare.evidence.models import DESIGN_TEXT, POPULATION_TEXT, fit_text
from ldncare.web.labels import side_effect_label


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ldncare.web", "templates"),
        autoescape=select_autoescape(["html", "xml", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["side_effect"] = side_effect_label
    # Wherever a source is shown: its population, design, size and year (issue 22 item 4).
    env.globals["fit_text"] = fit_text
    env.globals["population_text"] = POPULATION_TEXT
    env.globals["design_text"] = DESIGN_TEXT
    return env


def render_text(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``name`` with the request's user, CSRF token and demo flag filled in."""
    state = request.app.state
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    context.setdefault("demo", state.settings.demo)
    response = HTMLResponse(render_text(name, request=request, **context), status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response
