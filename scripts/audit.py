"""Audit the locked dependency set for known vulnerabilities with pip-audit.

Reads ``requirements/dev.lock`` (runtime + dev, every pin hashed) unless another lock is given.
It never passes silently; the exit status says what happened:

* 0 every locked package was looked up and none has a known vulnerability;
* 1 known vulnerabilities were found (listed, with the fixed versions);
* 2 the audit could not be done, or only in part: no advisory service could be asked from this
  network, or some packages could not be looked up. What was not checked is named.

pip-audit asks PyPI's advisory lookup first and, when PyPI cannot answer, OSV. PyPI's lookup
says "Dependency not found on PyPI" both when a package is really unknown and when the network
lets the package index through but not the per-release JSON the lookup uses; when that answer
comes for every locked package (all of them published releases) it is the network, and this
script says so instead of repeating pip-audit's wording.

Usage: ``python scripts/audit.py [LOCK]``; ``PIP_AUDIT`` overrides the pip-audit command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_FOUND = "Dependency not found on PyPI"
UNREACHABLE = ("ConnectionError", "Max retries exceeded", "Failed to resolve", "timed out")


def run_pip_audit(service: str, lock: Path) -> tuple[dict[str, object] | None, str]:
    """(pip-audit's JSON report or None, its console output) for one advisory service."""
    command = os.environ.get("PIP_AUDIT", str(ROOT / ".venv/bin/pip-audit"))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        args = [command, "--vulnerability-service", service, "--progress-spinner", "off"]
        args += ["--disable-pip", "--require-hashes", "-r", str(lock)]
        args += ["--format", "json", "--output", str(report)]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=600)
        except FileNotFoundError:
            return None, f"{command} not found; run scripts/bootstrap.sh dev"
        except subprocess.TimeoutExpired:
            return None, f"pip-audit ({service}) timed out after 600 s"
        output = (done.stdout + done.stderr).strip()
        if not report.is_file() or not report.read_text().strip():
            return None, output
        data: dict[str, object] = json.loads(report.read_text())
        return data, output


def main(argv: list[str]) -> int:
    lock = Path(argv[1]) if len(argv) > 1 else ROOT / "requirements/dev.lock"
    if not lock.is_file():
        print(f"audit: lock file {lock} not found (scripts/lock.sh makes it)", file=sys.stderr)
        return 2
    why: list[str] = []
    for service in ("pypi", "osv"):
        data, output = run_pip_audit(service, lock)
        if data is None:
            reason = "could not be reached" if any(u in output for u in UNREACHABLE) else "failed"
            last = output.splitlines()[-1] if output else "no output"
            why.append(f"{service}: {reason} ({last[:160]})")
            continue
        deps = [d for d in data["dependencies"] if isinstance(d, dict)]  # type: ignore[attr-defined]
        skipped = [d for d in deps if d.get("skip_reason")]
        vulnerable = [d for d in deps if d.get("vulns")]
        for dep in vulnerable:
            for vuln in dep["vulns"]:
                fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
                print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
        if vulnerable:
            print(
                f"audit: FAILED, {len(vulnerable)} locked package(s) with known vulnerabilities "
                f"(service: {service}); raise the pins with scripts/lock.sh --upgrade",
                file=sys.stderr,
            )
            return 1
        if not skipped:
            print(f"audit: OK, {len(deps)} locked packages audited ({service}), none vulnerable")
            return 0
        if len(skipped) == len(deps) and all(NOT_FOUND in d["skip_reason"] for d in skipped):
            why.append(
                f"{service}: answered 'not found' for all {len(deps)} locked packages, which are "
                "published releases: its advisory lookup is blocked on this network"
            )
            continue
        for dep in skipped:
            print(f"not audited: {dep['name']}: {dep['skip_reason']}", file=sys.stderr)
        print(
            f"audit: INCOMPLETE, {len(deps) - len(skipped)} of {len(deps)} locked packages "
            f"audited ({service}), none vulnerable; {len(skipped)} could not be looked up "
            "(listed above): this is not a pass",
            file=sys.stderr,
        )
        return 2
    print("audit: COULD NOT AUDIT: no advisory service could be asked from here.", file=sys.stderr)
    for line in why:
        print(f"audit:   {line}", file=sys.stderr)
    print("audit: nothing was checked; this is not a pass.", file=sys.stderr)
    print("audit: run it where the network reaches an advisory service.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
