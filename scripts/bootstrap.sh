#!/usr/bin/env bash
# Create .venv and install ldncare into it (editable). Idempotent and quick when nothing changed.
#   scripts/bootstrap.sh          runtime only
#   scripts/bootstrap.sh dev      with the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
spec="."
[ "$extra" = "dev" ] && spec=".[dev]"
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${extra:-run}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import ldncare" # fail loudly if the install did not work
  touch "$stamp"
fi
