# The README's two commands: `make run` (train, evaluate and report the default
# model) and `make test` (the linters, then the whole test suite: what CI runs). Both
# create .venv themselves. Before each commit: `make test-fast` (no slow tests, under
# 3 minutes on 2 cores) and `make lint`.
PYTHON ?= python3
VENV   ?= .venv
MODEL  ?= cnn
RUNS   ?= runs
PY     := $(VENV)/bin/python
# ruff checks the notebook too; `ruff format` leaves it alone (it would rewrite most cells).
LINTED    := src tests tools notebooks
FORMATTED := src tests tools
# The docstring examples of the package run as doctests (examples that need a trained
# run or the network are marked `# doctest: +SKIP`); __main__ would run the CLI.
DOCTESTS  := --doctest-modules src/mnistlab --ignore=src/mnistlab/__main__.py
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test test-fast lint format install dev clean notebook

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
	$(PY) -m mnistlab read-bench $(RUNS)/latest --per-layout 20 --tesseract none
	$(PY) -m mnistlab report $(RUNS)/latest

# The whole suite, slow end-to-end tests included, after the linters.
test: lint
	$(PY) -m pytest --durations=25 tests $(DOCTESTS)

# Everything not marked slow, and the doctests.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow" tests $(DOCTESTS)

# ruff (lint and format), mypy over src (pyproject.toml [tool.mypy]) and the declared
# layering of the package (pyproject.toml [tool.importlinter]: no upward import, no cycle
# between layers; tests/test_layout.py checks for cycles inside them too).
lint: $(VENV)/.installed
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(FORMATTED)
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(PY) -m ruff format $(FORMATTED)
	$(PY) -m ruff check --fix $(LINTED)

# The walkthrough notebook in JupyterLab. JupyterLab (the `notebook` extra) is installed
# into .venv the first time; the kernel spec points at .venv's Python and is found first.
# Headless: make notebook JUPYTER_ARGS="--no-browser --port 8888"
JUPYTER_ARGS ?=
notebook: $(VENV)/.installed
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install --quiet -e ".[dev,notebook]"
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mnistlab .venv)" >/dev/null
	JUPYTER_PATH="$(abspath $(VENV))/share/jupyter" $(VENV)/bin/jupyter lab \
		--ServerApp.root_dir="$(CURDIR)" $(JUPYTER_ARGS) notebooks/walkthrough.ipynb

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
