# The README's two commands: `make run` (train, evaluate and report the default
# model) and `make test` (the whole test suite). Both create .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
MODEL  ?= fnn
RUNS   ?= runs
PY     := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint format install dev clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install dev: $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m mnistlab data
	$(PY) -m mnistlab train --model $(MODEL) --runs-dir $(RUNS)
	$(PY) -m mnistlab evaluate $(RUNS)/latest
	$(PY) -m mnistlab report $(RUNS)/latest

test: $(VENV)/.installed
	$(PY) -m ruff check src tests
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests
	$(PY) -m ruff format --check src tests

format: $(VENV)/.installed
	$(PY) -m ruff format src tests
	$(PY) -m ruff check --fix src tests

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
