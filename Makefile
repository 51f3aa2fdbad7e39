# chatbook — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml
# pytest-xdist workers: one per core of CI's 2-core machine (JOBS=0: one process, no workers)
JOBS ?= 2

.PHONY: run test lint typecheck install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/chatbook serve --config $(CONFIG) --demo

test: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(JOBS) --dist worksteal $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .

typecheck: install-test
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache *.egg-info
