# The README's two commands. `make run`: install and run ldncare; `make test`: the whole suite.
.PHONY: run test lint

run:
	@scripts/bootstrap.sh
	.venv/bin/ldncare plan src/ldncare/examples/pn-example.yaml

test:
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh dev
	.venv/bin/ruff check src tests scripts && .venv/bin/ruff format --check src tests scripts && .venv/bin/mypy
