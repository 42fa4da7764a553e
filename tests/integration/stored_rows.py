"""Every stored row an import writes, in a form two databases can be compared by (issue 20).

Used by ``test_import_lean_reader.py`` (the importer's lean reader stores what the Bundle
reader stores) and by ``bench/check_import_identical.py`` (a tree against a baseline tree, on a
realistic export). Row ids, which depend on the order of writing, are replaced by the FHIR
Patient id they belong to; the times of writing (``created_at``, ``imported_at``, ``at``, ...)
are left out, as they differ between any two runs. Everything else is kept: the patient row
and its snapshot, the population facts and the two-part ``source_hash``, the assessments,
plans, plan summaries, diary days and the audit rows (their detail included).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, text

#: Written at import time: differs between any two runs, so not compared.
TIMES = frozenset({"at", "created_at", "imported_at", "updated_at", "retrieved_at"})
#: The tables an import writes.
TABLES = (
    "patients",
    "pop_patient",
    "pop_medication",
    "pop_condition",
    "pop_lab",
    "assessments",
    "plans",
    "plan_summaries",
    "diary_entries",
    "audit_log",
)


def _value(v: Any) -> Any:
    """A stored value in one comparable form (JSON text from SQLite and JSONB from PostgreSQL
    alike, dates and decimals as text)."""
    if isinstance(v, str) and v[:1] in ("{", "["):
        try:
            v = json.loads(v)
        except ValueError:
            return v
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    if isinstance(v, (date, datetime, Decimal)):
        return str(v)
    return v


def stored_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Table -> its rows (sorted), each a tuple of (column, value) pairs, ids as FHIR ids."""
    engine = create_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            ext: dict[Any, Any] = dict(
                conn.execute(text("SELECT id, external_id FROM patients")).all()
            )
            plan_of = {
                pid: (ext.get(pk), version)
                for pid, pk, version in conn.execute(
                    text("SELECT id, patient_id, version FROM plans")
                )
            }
            for table in TABLES:
                result = conn.execute(text(f"SELECT * FROM {table}"))  # names from TABLES
                cols = list(result.keys())
                rows = []
                for raw in result:
                    rec = dict(zip(cols, raw, strict=True))
                    if "patient_id" in rec:
                        rec["patient_id"] = ext.get(rec["patient_id"], rec["patient_id"])
                    if table == "plan_summaries":
                        rec["plan_id"] = plan_of.get(rec["plan_id"])
                    key = rec.get("entity_id")
                    if table == "audit_log" and rec.get("entity") == "patient" and key:
                        rec["entity_id"] = ext.get(int(key), key) if key.isdigit() else key
                    rows.append(
                        tuple(
                            (c, _value(v))
                            for c, v in rec.items()
                            if c not in TIMES and not (c == "id" and table != "pop_patient")
                        )
                    )
                out[table] = sorted(rows, key=repr)
    finally:
        engine.dispose()
    return out


def differences(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]],
                limit: int = 5) -> list[str]:  # fmt: skip
    """The first differences between two :func:`stored_rows` (empty when identical)."""
    found: list[str] = []
    for table in TABLES:
        ra, rb = a.get(table, []), b.get(table, [])
        if len(ra) != len(rb):
            found.append(f"{table}: {len(ra)} rows vs {len(rb)}")
        sa, sb = set(ra), set(rb)
        for row in sorted(sa - sb, key=repr)[:limit]:
            found.append(f"{table}: only in the first: {row}")
        for row in sorted(sb - sa, key=repr)[:limit]:
            found.append(f"{table}: only in the second: {row}")
    return found
