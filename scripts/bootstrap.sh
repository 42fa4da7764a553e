#!/usr/bin/env bash
# Create .venv and install ldncare into it from the lock. Idempotent and quick when nothing changed.
#   scripts/bootstrap.sh          runtime only (requirements/runtime.lock)
#   scripts/bootstrap.sh dev      with the test and lint tools (requirements/dev.lock)
# Every package comes from the lock with its hash checked (--require-hashes); ldncare itself is
# then installed editable with --no-deps, so nothing outside the lock can slip in.
# scripts/lock.sh regenerates the locks from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
case "$extra" in
  "") lock=requirements/runtime.lock ;;
  dev) lock=requirements/dev.lock ;;
  *) echo "bootstrap: unknown argument '$extra' (use no argument, or 'dev')" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(cat "$lock" pyproject.toml | sha1sum | cut -c1-12)-${extra:-run}"
# pip's output without the noise of this machine's optional local mirrors; pip's status kept.
pip_install() {
  local rc=0
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >.venv/pip.log 2>&1 \
    || rc=$?
  grep -v "is ignored: it is neither a file nor a directory" .venv/pip.log || true
  return "$rc"
}
if [ ! -f "$stamp" ]; then
  pip_install --require-hashes -r "$lock"
  pip_install --no-deps -e .
  # Nothing beyond the locks: a package left from an older install (the former torch extra, a
  # pin that was dropped) is removed. The dev tools stay when `make run` follows `make test`.
  mapfile -t stale < <(.venv/bin/python - requirements/runtime.lock requirements/dev.lock <<'PY'
import importlib.metadata as md
import re
import sys

def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

locked = {norm(re.split(r"[=\[ ;]", line)[0]) for lock in sys.argv[1:] for line in open(lock)
          if re.match(r"[A-Za-z0-9]", line)}
keep = locked | {"pip", "setuptools", "wheel", "ldncare"}
print("\n".join(sorted({norm(d.metadata["Name"]) for d in md.distributions()} - keep)))
PY
  )
  if [ "${#stale[@]}" -gt 0 ] && [ -n "${stale[0]}" ]; then
    echo "bootstrap: removing packages not in requirements/*.lock: ${stale[*]}"
    .venv/bin/python -m pip uninstall --quiet --yes "${stale[@]}"
  fi
  .venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check; exit 1; }
  .venv/bin/python -c "import ldncare" # fail loudly if the install did not work
  rm -f .venv/.installed-*
  touch "$stamp"
fi
