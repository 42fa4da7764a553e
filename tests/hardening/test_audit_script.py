"""scripts/audit.sh never passes silently: a pip-audit stand-in plays each outcome."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "audit.sh"


def _run(tmp_path: Path, output: str, status: int) -> tuple[int, str, str]:
    stub = tmp_path / "pip-audit"
    args_file = tmp_path / "args"
    stub.write_text(
        f'#!/usr/bin/env bash\necho "$@" > {args_file}\ncat <<"OUT"\n{output}\nOUT\nexit {status}\n'
    )
    stub.chmod(0o755)
    env = {**os.environ, "PIP_AUDIT": str(stub)}
    done = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr, args_file.read_text()


@pytest.mark.parametrize(
    ("output", "status", "expected", "says"),
    [
        ("No known vulnerabilities found", 0, 0, "audit: OK"),
        ("Found 2 known vulnerabilities in 1 package\nName Version ID", 1, 1, "known vuln"),
        (
            "ERROR:pip_audit._cli:alembic: Dependency not found on PyPI and could not be audited",
            1,
            2,
            "COULD NOT AUDIT",
        ),
        ("ConnectionError: network unreachable", 1, 2, "COULD NOT AUDIT"),
    ],
    ids=["clean", "vulnerable", "unknown-to-the-service", "offline"],
)
def test_audit_script_outcomes(
    tmp_path: Path, output: str, status: int, expected: int, says: str
) -> None:
    code, text, args = _run(tmp_path, output, status)
    assert code == expected, text
    assert says in text
    # A package the service cannot look up must fail the audit, never be skipped.
    assert "--strict" in args.split()
    assert "-r" in args.split()
