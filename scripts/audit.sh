#!/usr/bin/env bash
# Audit the installed Python packages (.venv) for known vulnerabilities with pip-audit, against
# the advisory data of PyPI. Never passes silently:
#   exit 0  every installed package was audited and none has a known vulnerability
#   exit 1  pip-audit found known vulnerabilities (listed above the summary)
#   exit 2  the audit could not be done: the advisory service is unreachable, or it does not
#           know some packages (pip-audit would skip them and still say "no vulnerabilities")
# ldncare itself (installed editable, not on PyPI) is left out. PIP_AUDIT overrides the command.
set -uo pipefail
cd "$(dirname "$0")/.."
PIP_AUDIT="${PIP_AUDIT:-.venv/bin/pip-audit}"
if ! command -v "$PIP_AUDIT" >/dev/null 2>&1; then
  echo "audit: $PIP_AUDIT not found; run scripts/bootstrap.sh dev" >&2
  exit 2
fi
reqs="$(mktemp)"
out="$(mktemp)"
trap 'rm -f "$reqs" "$out"' EXIT
.venv/bin/python -m pip freeze --all --exclude-editable --disable-pip-version-check >"$reqs"
# --strict: a package the service cannot look up is a failure, not a skip.
"$PIP_AUDIT" --progress-spinner off --strict --disable-pip --no-deps -r "$reqs" >"$out" 2>&1
rc=$?
cat "$out"
if [ "$rc" -eq 0 ]; then
  echo "audit: OK, $(grep -c . "$reqs") packages audited, no known vulnerabilities"
  exit 0
fi
if grep -Eq "Found [0-9]+ known vulnerabilit" "$out"; then
  echo "audit: FAILED, known vulnerabilities in installed packages (see above)" >&2
  exit 1
fi
echo "audit: COULD NOT AUDIT (exit $rc): the advisory service was not reachable or does not" >&2
echo "audit: know every installed package; nothing was checked, this is not a pass" >&2
exit 2
