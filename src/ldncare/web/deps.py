"""Request dependencies: the database engine, the logged-in user, CSRF for API writes."""

from __future__ import annotations

from datetime import date

from fastapi import Request
from sqlalchemy import Engine

from ldncare.web.auth import CurrentUser, NotAuthenticated
from ldncare.web.csrf import check_header


def engine(request: Request) -> Engine:
    eng: Engine = request.app.state.engine
    return eng


def today(request: Request) -> date:
    """The app's notion of today (tests and the demo may pin it)."""
    clock = request.app.state.clock
    day: date = clock()
    return day


def optional_user(request: Request) -> CurrentUser | None:
    user: CurrentUser | None = getattr(request.state, "user", None)
    return user


def user(request: Request) -> CurrentUser:
    current = optional_user(request)
    if current is None:
        raise NotAuthenticated()
    return current


def writer(request: Request) -> CurrentUser:
    """A logged-in user whose request carries the session's CSRF token (API writes)."""
    current = user(request)
    check_header(request)
    return current
