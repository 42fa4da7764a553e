#!/usr/bin/env bash
# Audit the locked dependency set (requirements/dev.lock) for known vulnerabilities with
# pip-audit. Exit 0: audited, none vulnerable; 1: known vulnerabilities; 2: the audit could not
# be done (advisory service unreachable) or only in part. scripts/audit.py says which, plainly.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" scripts/audit.py "$@"
