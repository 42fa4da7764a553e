"""scripts/audit.sh never passes silently: a pip-audit stand-in plays each outcome of each
advisory service (PyPI first, OSV when PyPI cannot answer) on the real lock file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "audit.sh"
LOCK = ROOT / "requirements" / "dev.lock"

STUB = """#!{python}
import json, sys
from pathlib import Path
args = sys.argv[1:]
service = args[args.index("--vulnerability-service") + 1]
Path({log!r}).open("a").write(" ".join(args) + "\\n")
plan = json.loads(Path({plan!r}).read_text())[service]
if plan.get("report") is not None:
    Path(args[args.index("--output") + 1]).write_text(json.dumps(plan["report"]))
print(plan.get("output", ""))
sys.exit(plan.get("status", 0))
"""


def _deps(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": f"pkg{i}", "version": "1.0", "vulns": [], **extra} for i in range(n)]


NOT_FOUND = {"skip_reason": "Dependency not found on PyPI and could not be audited: x (1.0)"}
OFFLINE = {"output": "requests.exceptions.ConnectionError: Max retries exceeded", "status": 1}
CLEAN = {"report": {"dependencies": _deps(5), "fixes": []}}
VULNERABLE = {
    "report": {
        "dependencies": [
            *_deps(3),
            {
                "name": "jinja2",
                "version": "3.1.2",
                "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}],
            },
        ],
        "fixes": [],
    },
    "status": 1,
}
ALL_NOT_FOUND = {"report": {"dependencies": _deps(5, **NOT_FOUND), "fixes": []}}
SOME_NOT_FOUND = {"report": {"dependencies": _deps(4) + _deps(1, **NOT_FOUND), "fixes": []}}


def _run(tmp_path: Path, plan: dict[str, Any]) -> tuple[int, str, list[str]]:
    stub, log, plan_file = tmp_path / "pip-audit", tmp_path / "calls", tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    stub.write_text(STUB.format(python=sys.executable, log=str(log), plan=str(plan_file)))
    stub.chmod(0o755)
    env = {**os.environ, "PIP_AUDIT": str(stub)}
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, done.stdout + done.stderr, calls


@pytest.mark.parametrize(
    ("plan", "expected", "says"),
    [
        ({"pypi": CLEAN}, 0, "audit: OK, 5 locked packages audited (pypi)"),
        ({"pypi": VULNERABLE}, 1, "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)"),
        ({"pypi": ALL_NOT_FOUND, "osv": CLEAN}, 0, "audited (osv)"),
        ({"pypi": ALL_NOT_FOUND, "osv": VULNERABLE}, 1, "audit: FAILED"),
        ({"pypi": ALL_NOT_FOUND, "osv": OFFLINE}, 2, "advisory lookup is blocked"),
        ({"pypi": OFFLINE, "osv": OFFLINE}, 2, "osv: could not be reached"),
        ({"pypi": SOME_NOT_FOUND}, 2, "audit: INCOMPLETE, 4 of 5"),
    ],
    ids=[
        "clean",
        "vulnerable",
        "pypi-blocked-osv-clean",
        "pypi-blocked-osv-vulnerable",
        "no-service-reachable",
        "offline",
        "partly-audited",
    ],
)
def test_audit_outcomes(tmp_path: Path, plan: dict[str, Any], expected: int, says: str) -> None:
    code, text, calls = _run(tmp_path, plan)
    assert code == expected, text
    assert says in text, text
    if expected == 2:
        assert "not a pass" in text
    # The locked set, hash-checked, is what is audited; OSV is asked only when PyPI cannot answer.
    assert all(f"-r {LOCK}" in c and "--require-hashes" in c for c in calls)
    assert len(calls) == (1 if "pypi" in plan and len(plan) == 1 else 2)


def test_the_lock_that_is_audited_holds_no_torch_or_cuda_package() -> None:
    names = [line.split("==")[0] for line in LOCK.read_text().splitlines() if "==" in line[:80]]
    assert len(names) > 50
    assert not [n for n in names if n.startswith(("torch", "nvidia-", "triton"))]
