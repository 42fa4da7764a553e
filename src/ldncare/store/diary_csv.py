"""Diary <-> CSV text. One row per day; the header names the columns (order free on import).

Columns: day, pain_avg, pain_worst, sitting_minutes, sleep_quality, side_effects, dose_taken,
dose, dose_time, pgic, notes. ``dose`` carries its unit ("1.5 mg"); a bare number is refused.
``side_effects`` is ``effect:severity`` pairs separated by ``;`` (e.g.
``vivid_dreams:mild; headache:moderate``), or a JSON list when a side effect has a note.
``dose_taken`` accepts yes/no, true/false, y/n, 1/0 or blank.

The export defuses spreadsheet formulas (OWASP "CSV Injection"): a cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return (after any apostrophes) gets one more
leading apostrophe, so a diary note such as ``=HYPERLINK(...)`` opens as text in a
spreadsheet; the import takes that apostrophe off again, so export and import round-trip.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from ldncare.core.diary import DiaryEntry, parse_entry
from ldncare.core.quantity import format_decimal
from ldncare.errors import InvalidInput
from ldncare.json_input import JsonProblem, loads_strict

COLUMNS = (
    "day",
    "pain_avg",
    "pain_worst",
    "sitting_minutes",
    "sleep_quality",
    "side_effects",
    "dose_taken",
    "dose",
    "dose_time",
    "pgic",
    "notes",
)
#: Python's csv module refuses a field longer than this many characters (csv.field_size_limit).
MAX_FIELD_CHARS = csv.field_size_limit()
#: A cell a spreadsheet would read as a formula, behind any apostrophes already escaping it.
_FORMULA = re.compile(r"^'*[=+\-@\t\r]")
_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}


def _side_effects(text: str, where: str) -> list[dict[str, Any]]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            raw = loads_strict(text)
        except JsonProblem as exc:
            raise InvalidInput(str(exc), field=f"{where}.side_effects") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"not valid JSON ({exc.msg})", field=f"{where}.side_effects"
            ) from None
        if not isinstance(raw, list):
            raise InvalidInput("expected a JSON list", field=f"{where}.side_effects")
        return raw
    out: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        effect, sep, severity = part.partition(":")
        if not sep:
            raise InvalidInput(
                f"{part!r} needs a severity, e.g. '{part}:mild' (mild, moderate or severe)",
                field=f"{where}.side_effects",
            )
        out.append({"effect": effect.strip(), "severity": severity.strip()})
    return out


def _bool(text: str, where: str) -> bool | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(f"{text!r} is not yes or no", field=f"{where}.dose_taken")


def parse_diary_csv(text: str, *, today: date) -> list[DiaryEntry]:
    """Validate every row; any bad row refuses the whole file (nothing is half-imported)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    with _csv_errors("row 1"):
        fieldnames = reader.fieldnames
    if fieldnames is None:
        raise InvalidInput("the CSV file is empty")
    header = [h.strip() for h in fieldnames]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {', '.join(unknown)}; accepted: {', '.join(COLUMNS)}"
        )
    if "day" not in header:
        raise InvalidInput("the CSV file has no 'day' column")
    entries: list[DiaryEntry] = []
    seen: dict[date, int] = {}
    for line, raw in _rows(reader):
        where = f"row {line}"
        row = {k.strip(): _unescape((v or "").strip()) for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        data: dict[str, Any] = {
            k: (row.get(k) or None)
            for k in (
                "day",
                "pain_avg",
                "pain_worst",
                "sitting_minutes",
                "sleep_quality",
                "dose_time",
                "pgic",
                "notes",
            )
        }
        data["side_effects"] = _side_effects(row.get("side_effects", ""), where)
        data["dose_taken"] = _bool(row.get("dose_taken", ""), where)
        data["dose_mg"] = row.get("dose") or None
        try:
            entry = parse_entry(data, today=today)
        except InvalidInput as exc:
            field = f"{where}.{exc.field}" if exc.field else where
            raise InvalidInput(exc.message, field=field) from None
        if entry.day in seen:
            raise InvalidInput(
                f"day {entry.day.isoformat()} appears twice (also row {seen[entry.day]})",
                field=where,
            )
        seen[entry.day] = line
        entries.append(entry)
    return entries


def _rows(reader: csv.DictReader[str]) -> Iterable[tuple[int, dict[str | Any, str | Any]]]:
    """The data rows, each with its row number (the header is row 1)."""
    rows = iter(reader)
    line = 2
    while True:
        with _csv_errors(f"row {line}"):
            raw = next(rows, None)
        if raw is None:
            return
        yield line, raw
        line += 1


@contextlib.contextmanager
def _csv_errors(where: str) -> Iterator[None]:
    """A malformed file is bad input naming the row, not a crash (csv.Error)."""
    try:
        yield
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise InvalidInput(
                f"a field is longer than the limit of {MAX_FIELD_CHARS} characters", field=where
            ) from None
        raise InvalidInput(f"not valid CSV ({exc})", field=where) from None


def spreadsheet_safe(cell: str) -> str:
    """``cell`` with one more leading apostrophe if a spreadsheet would read it as a formula."""
    return "'" + cell if _FORMULA.match(cell) else cell


def _unescape(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell) else cell


def _side_effects_text(entry: DiaryEntry) -> str:
    if any(s.note for s in entry.side_effects):
        return json.dumps([s.model_dump(exclude_none=True) for s in entry.side_effects])
    return "; ".join(f"{s.effect}:{s.severity}" for s in entry.side_effects)


def diary_to_csv(entries: Iterable[DiaryEntry]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in sorted(entries, key=lambda e: e.day):
        writer.writerow(
            spreadsheet_safe(cell)
            for cell in [
                e.day.isoformat(),
                _opt(e.pain_avg),
                _opt(e.pain_worst),
                _opt(e.sitting_minutes),
                _opt(e.sleep_quality),
                _side_effects_text(e),
                "" if e.dose_taken is None else ("yes" if e.dose_taken else "no"),
                "" if e.dose_mg is None else f"{format_decimal(e.dose_mg)} mg",
                "" if e.dose_time is None else e.dose_time.strftime("%H:%M"),
                _opt(e.pgic),
                e.notes or "",
            ]
        )
    return buf.getvalue()


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


__all__: Sequence[str] = ("COLUMNS", "diary_to_csv", "parse_diary_csv", "spreadsheet_safe")
