# The README's two commands.
#   make run   installs ldncare and starts the web app in demo mode (SQLite, demo patients)
#   make test  installs everything the tests need and runs lint, type checks and every test
.PHONY: run test lint bench audit screenshots

HOST ?= 127.0.0.1
PORT ?= 8000
# A database of its own for the demo, so demo patients never mix with real ones.
DEMO_DB ?= sqlite:///$(CURDIR)/var/ldncare-demo.db

run:
	@scripts/ci-system-deps.sh --runtime
	@scripts/bootstrap.sh
	@mkdir -p var
	LDNCARE_DATABASE_URL=$(DEMO_DB) .venv/bin/ldncare serve --demo --host $(HOST) --port $(PORT)

test:
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh dev
	.venv/bin/ruff check src tests scripts bench && .venv/bin/ruff format --check src tests scripts bench && .venv/bin/mypy && .venv/bin/mypy bench/*.py

bench:
	@scripts/bootstrap.sh dev
	.venv/bin/python bench/run.py

audit:
	@scripts/bootstrap.sh dev
	scripts/audit.sh

# Refresh docs/screenshots/ from the browser tests (needs chromium: scripts/ci-system-deps.sh).
screenshots:
	@scripts/bootstrap.sh dev
	LDNCARE_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider
