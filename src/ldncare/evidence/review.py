"""Review as a routine: which statements are due for a re-read, which sources have been overtaken.

A statement is *stale* when nobody has re-read it against its sources for longer than the review
period (12 months by default): new evidence may have appeared and the text may no longer say what
the sources do. A source is *superseded* when the bibliography holds a newer source of the same
kind (``evidence_type``) on the same clinical question (an ``evidence_for`` tag, the tags
``recency.py`` picks "the latest review" from): the older one may still be cited, but whoever
cites it should check the newer one says the same.

Pure functions over the loaded evidence; ``ldncare sources --stale`` prints them.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from ldncare.errors import InvalidInput
from ldncare.evidence.models import Source, Statement

#: Review period when none is given: a statement is re-read at least once a year.
DEFAULT_MONTHS = 12


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (the month's last day if it is shorter)."""
    if months < 1:
        raise InvalidInput(f"review period must be at least 1 month, got {months}")
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


@dataclass(frozen=True)
class StaleStatement:
    """A statement last reviewed before the cut-off (or never, for a derived statement)."""

    id: str
    reviewed: date | None
    due_since: date

    def to_json(self) -> dict[str, str | None]:
        return {
            "statement": self.id,
            "reviewed": self.reviewed.isoformat() if self.reviewed else None,
            "due_since": self.due_since.isoformat(),
        }


@dataclass(frozen=True)
class SupersededSource:
    """An older source with newer ones of the same kind on the same question."""

    id: str
    year: int
    evidence_type: str
    question: str
    newer: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.id,
            "year": self.year,
            "evidence_type": self.evidence_type,
            "question": self.question,
            "superseded_by": list(self.newer),
        }


def stale_statements(
    statements: Iterable[Statement], as_of: date, months: int = DEFAULT_MONTHS
) -> list[StaleStatement]:
    """Statements not reviewed within ``months`` before ``as_of``, oldest review first.

    A statement reviewed exactly ``months`` ago is still within its period; one day earlier is
    stale. The review is due since the day its period ran out.
    """
    cutoff = months_before(as_of, months)
    out = []
    for s in statements:
        if s.reviewed is None or s.reviewed < cutoff:
            due = cutoff if s.reviewed is None else _period_end(s.reviewed, months)
            out.append(StaleStatement(id=s.id, reviewed=s.reviewed, due_since=due))
    return sorted(out, key=lambda x: (x.reviewed or date.min, x.id))


def _period_end(reviewed: date, months: int) -> date:
    index = reviewed.year * 12 + (reviewed.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(reviewed.day, calendar.monthrange(year, month)[1]))


def superseded_sources(sources: Mapping[str, Source]) -> list[SupersededSource]:
    """Each (source, question) with newer sources of the same kind on that question.

    Newer means a later publication year; sources of the same year do not supersede each other.
    """
    out = []
    for s in sources.values():
        for question in s.evidence_for:
            newer = sorted(
                (
                    o
                    for o in sources.values()
                    if o.evidence_type == s.evidence_type
                    and question in o.evidence_for
                    and o.year > s.year
                ),
                key=lambda o: (-o.year, o.id),
            )
            if newer:
                out.append(
                    SupersededSource(
                        id=s.id,
                        year=s.year,
                        evidence_type=s.evidence_type,
                        question=question,
                        newer=tuple(o.id for o in newer),
                    )
                )
    return sorted(out, key=lambda x: (x.question, x.evidence_type, x.year, x.id))
