#!/usr/bin/env bash
# Regenerate the locks in requirements/ from pyproject.toml (the lower bounds stay there, for
# people who use ldncare as a library; the locks pin what `make run` and `make test` install).
#   scripts/lock.sh            keep the pinned versions that still fit, add what is new
#   scripts/lock.sh --upgrade  move every pin to the newest release that fits
# Uses uv (`uv pip compile`, hashes of every wheel and sdist of each pin, one lock for every
# platform). uv is taken from PATH, or installed once into a throwaway venv under /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-$(command -v uv || true)}"
if [ -z "$UV" ]; then
  tools="${TMPDIR:-/tmp}/ldncare-lock-tools"
  [ -x "$tools/bin/uv" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install --quiet uv; }
  UV="$tools/bin/uv"
fi
args=(--universal --python-version 3.11 --generate-hashes --quiet
      --custom-compile-command "scripts/lock.sh" "$@")
# The dev lock is constrained by the runtime lock, so both install the same runtime versions.
"$UV" pip compile pyproject.toml "${args[@]}" -o requirements/runtime.lock
"$UV" pip compile pyproject.toml --extra dev -c requirements/runtime.lock "${args[@]}" \
  -o requirements/dev.lock
if grep -Eiq '^(torch|nvidia-|triton)' requirements/*.lock; then
  echo "lock: torch/CUDA packages in the lock; they must never be part of the default install" >&2
  exit 1
fi
echo "lock: requirements/runtime.lock ($(grep -c '^[a-z0-9]' requirements/runtime.lock) packages)," \
  "requirements/dev.lock ($(grep -c '^[a-z0-9]' requirements/dev.lock) packages)"
