"""Write (or check) docs/plan-contract.schema.json from the ldncare.plan/1 model.

The JSON Schema is generated from ``ldncare.core.plan_contract.PlanContract``; never edit the
file by hand. ``tests/unit/test_plan_contract.py`` fails when the committed file differs.

Usage: ``python scripts/plan_contract_schema.py [--check]`` (``--check`` writes nothing and
exits 1 when the file is out of date).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ldncare.core.plan_contract import plan_json_schema_text

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "plan-contract.schema.json"


def main(argv: list[str]) -> int:
    text = plan_json_schema_text()
    current = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else None
    if "--check" in argv:
        if current != text:
            print(f"{SCHEMA_FILE} is out of date: run scripts/plan_contract_schema.py")
            return 1
        print(f"{SCHEMA_FILE} is up to date")
        return 0
    if current != text:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_FILE}")
    else:
        print(f"{SCHEMA_FILE} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
