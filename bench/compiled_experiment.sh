#!/usr/bin/env bash
# The mypyc experiment of bench/README.md ("Targets still missed"), to repeat it: compile the
# CDS Hooks decision path of a scratch copy of the package with mypyc, then run the http group
# against the compiled copy and against the tree, one after the other (quick runs). The tree
# itself is never compiled; ldncare ships as plain Python.
#
#   bench/compiled_experiment.sh            # about 6 minutes; prints both result files
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/src/ldncare" "$scratch/"
find "$scratch" -name __pycache__ -prune -exec rm -rf {} +
printf '[mypy]\npython_version = 3.11\nplugins = pydantic.mypy\nignore_missing_imports = True\n' \
  > "$scratch/mypy.ini"
(
  cd "$scratch"
  "$root/.venv/bin/mypyc" --config-file mypy.ini \
    ldncare/fhir/patient_bundle.py ldncare/cdshooks/hooks.py ldncare/cdshooks/cards.py \
    ldncare/cdshooks/fetch.py ldncare/core/context.py ldncare/core/screening.py \
    ldncare/core/findings.py ldncare/core/vocabulary.py ldncare/core/quantity.py \
    ldncare/core/renal.py >"$scratch/mypyc.log" 2>&1 || { cat "$scratch/mypyc.log"; exit 1; }
)
PYTHONPATH="$scratch" "$py" -c "import ldncare.fhir.patient_bundle as m; assert m.__file__.endswith('.so'), m.__file__"
PYTHONPATH="$scratch" "$py" "$root/bench/run.py" --quick --only http --out "$scratch/compiled.md"
"$py" "$root/bench/run.py" --quick --only http --out "$scratch/plain.md"
echo "== compiled (mypyc)"; grep -E '^\| http' "$scratch/compiled.md"
echo "== plain Python"; grep -E '^\| http' "$scratch/plain.md"
