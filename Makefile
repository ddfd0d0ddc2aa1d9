# Task runner; CI calls `make lint` and `make test` through .ci/run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/smsbatch send input/contacts.xlsx --template input/template.txt

# Style, format, types and import rules (the layering in pyproject.toml's importlinter).
lint: install
	$(BIN)/ruff check pipeline tests benchmarks scripts notebooks
	$(BIN)/ruff format --check pipeline tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install
	$(BIN)/python -m pytest

# The edit loop: everything but the tests marked slow (end-to-end runs, notebooks).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python benchmarks/bench_check.py
	$(BIN)/python benchmarks/bench_send.py

sandbox: install
	$(BIN)/smsbatch sandbox

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
