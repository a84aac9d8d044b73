# livechat-hitl — the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test quick lint typecheck check bench clean simulator

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make run: the sandbox (gateway + LiveChat simulator + agent console, embedded SQLite)
run: $(STAMP)
	$(BIN)/livechat-hitl sandbox

simulator: $(STAMP)
	$(BIN)/livechat-hitl simulator

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy src

check: lint typecheck

## make test: every test, slow fault, e2e, browser and PostgreSQL suites included
test: check
	./scripts/ensure-chromium
	$(BIN)/python -m pytest -p no:cacheprovider -ra

## make quick: the fast tiers only, for iteration
quick: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -q -x -m "not slow and not browser"

## make bench: the gateway against a bare ASGI baseline on loopback (see bench/RESULTS.md);
## BENCH_ARGS="--quick" for a short run, "--postgres postgresql://…" for PostgreSQL
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
