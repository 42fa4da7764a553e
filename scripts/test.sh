#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: install, lint, type-check, test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
echo "== ruff"; .venv/bin/ruff check src tests scripts
echo "== ruff format"; .venv/bin/ruff format --check src tests scripts
echo "== mypy"; .venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest -n 2 -q -p no:cacheprovider "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of the suite, not a pass.
exit $rc
