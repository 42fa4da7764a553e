#!/usr/bin/env bash
# Install the Debian packages the web app, its PDF handouts and its browser tests need.
# Idempotent: only packages that are not installed yet are installed, and `apt-get update`
# runs once, only when something is missing. Needs root (CI and developer machines run as root).
#   scripts/ci-system-deps.sh            everything the test suite needs
#   scripts/ci-system-deps.sh --runtime  only what the app itself needs (PDF handouts)
set -euo pipefail

PACKAGES=(
  chromium            # Playwright e2e tests drive Debian's chromium (never `playwright install`)
  poppler-utils       # pdftoppm / pdftotext for the handout tests
  libpango-1.0-0      # WeasyPrint
  libpangoft2-1.0-0   # WeasyPrint
  libharfbuzz-subset0 # WeasyPrint font subsetting
  fonts-dejavu-core   # fonts for PDFs and screenshots
  postgresql          # optional PostgreSQL test backend
  wrk                 # HTTP load measurements
)

if [ "${1:-}" = "--runtime" ]; then
  PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core)
fi
if [ "$(id -u)" != "0" ] && ! command -v sudo >/dev/null; then
  echo "ci-system-deps: not root; skipping the check of ${PACKAGES[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "ci-system-deps: all ${#PACKAGES[@]} system packages present"
  exit 0
fi

echo "ci-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "ci-system-deps: done"
