# `make demo` runs the quickstart on the embedded store; `make test` runs the test suite.
# Both create .venv and install agentnn into it when it is missing or out of date.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-team lint bench install clean

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/agentnn quickstart

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir .site
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

# The team path alone: PostgreSQL and `mlflow server`s (plain and basic-auth) started by the tests.
test-team: install
	$(BIN)/python -m pytest -q -m team

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

bench: install
	$(BIN)/python bench/tracking_overhead.py

clean:
	rm -rf $(VENV) mlruns .pytest_cache .mypy_cache .site
