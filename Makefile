# Task runner; CI calls `make test` through .ci/run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/smsbatch send input/contacts.xlsx --template input/template.txt

test: install
	$(BIN)/ruff check pipeline tests benchmarks scripts notebooks
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_check.py
	$(BIN)/python benchmarks/bench_send.py

sandbox: install
	$(BIN)/smsbatch sandbox

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
