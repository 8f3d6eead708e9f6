# strataflow: `make demo` runs the sample platform on the local sandbox; `make test` runs the tests.
# Both create .venv and install what they need on a machine with only python3 and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export STRATA_HOME ?= $(HOME)/.strataflow
# pytest-xdist workers for `make test`: each has its own Prefect server and sandboxes, and the
# tests wait on servers and subprocesses more than they compute, so 3 suit 2 cores. Each worker
# takes whole files (a module's fixtures are built once). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3

.PHONY: demo test test-fast bench lint typecheck clean stop

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" ./scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check strataflow flows tasks blocks tests bench
	$(BIN)/mypy strataflow flows tasks blocks
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layers.py

stop: $(STAMP)
	$(BIN)/strata server stop

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
