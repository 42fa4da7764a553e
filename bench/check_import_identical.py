"""Does this tree store exactly what a baseline tree stores for the same export? (issue 20)

Imports one Bulk export (or a Bundle file) twice, each into a fresh database and in its own
process: once with the baseline tree's ``src`` first on ``PYTHONPATH`` (e.g. main 4959cfc:
``git -C /work/main archive 4959cfc | tar -x -C /tmp/import-base``), once with this tree's.
Then every stored row that matters is compared (``tests/integration/stored_rows.py``: patients
and their snapshots, population facts and hashes, assessments, plans, diary, audit rows; ids
and times of writing aside), and the import reports' counts. Exit 1 and the first
differences when anything differs.

Run: ``.venv/bin/python bench/check_import_identical.py --baseline /tmp/import-base EXPORT
[EXPORT ...] [--postgres URL] [--workers N]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import scratch_database  # noqa: E402
from tests.integration.stored_rows import differences, stored_rows  # noqa: E402

AS_OF = "2026-12-01"
COUNTS = ("patients_read", "patients_imported", "patients_updated", "patients_unchanged",
          "patients_skipped", "medications_total", "conditions", "observations")  # fmt: skip

_IMPORT = """
import json, sys
from datetime import date
from pathlib import Path
from ldncare.store.db import make_engine, migrate
src, url, workers = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
migrate(url)
engine = make_engine(url)
as_of = date.fromisoformat(sys.argv[4])
if src.is_dir():
    if workers:
        from ldncare.import_parallel import import_export
        r = import_export(engine, src, "check", as_of=as_of, workers=workers)
    else:
        from ldncare.importing import import_ndjson
        r = import_ndjson(engine, src, "check", as_of=as_of)
else:
    from ldncare.importing import import_bundle
    r = import_bundle(engine, json.loads(src.read_text()), "check", as_of=as_of)
errors = sorted((e.resource_type, e.resource_id or "", e.field or "", e.message) for e in r.errors)
counts = sys.argv[5].split(",")
print(json.dumps({k: getattr(r, k) for k in counts} | {"errors": errors}))
"""


def _import(src_dir: Path, export: Path, url: str, workers: int) -> dict[str, Any]:
    env = os.environ | {"PYTHONPATH": str(src_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT, str(export), url, str(workers), AS_OF, ",".join(COUNTS)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", type=Path, nargs="+", help="export folders or Bundle files")
    parser.add_argument("--baseline", type=Path, required=True, help="a tree with src/ldncare")
    parser.add_argument("--postgres", default=os.environ.get("LDNCARE_TEST_POSTGRES_URL"))
    parser.add_argument("--dbs", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, default=0, help="0: the one-process importer")
    args = parser.parse_args()
    dbs = [d for d in args.dbs if d == "sqlite" or args.postgres]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for export in args.exports:
            for db in dbs:
                with scratch_database(db, work, args.postgres, "base") as base_url, \
                        scratch_database(db, work, args.postgres, "mine") as mine_url:  # fmt: skip
                    base = _import(args.baseline / "src", export, base_url, args.workers)
                    mine = _import(ROOT / "src", export, mine_url, args.workers)
                    a, b = stored_rows(base_url), stored_rows(mine_url)
                rows = sum(len(v) for v in a.values())
                diff = differences(a, b)
                if a != b and not diff:
                    diff = ["the same rows, stored a different number of times"]
                if base != mine:
                    diff.append(f"reports differ: {base} vs {mine}")
                status = "IDENTICAL" if not diff else "DIFFERENT"
                n, issues = base["patients_read"], len(base["errors"])
                print(f"{status}: {export} on {db} (workers={args.workers}): {rows} rows, "
                      f"{n} patients, {issues} issues")  # fmt: skip
                for line in diff:
                    print("  " + line[:400])
                failed |= bool(diff)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
