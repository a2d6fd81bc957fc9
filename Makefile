# The README's two commands: `make run` (train, evaluate and report the default
# model) and `make test` (the whole test suite). Both create .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
MODEL  ?= cnn
RUNS   ?= runs
PY     := $(VENV)/bin/python
# ruff checks the notebook too; `ruff format` leaves it alone (it would rewrite most cells).
LINTED    := src tests tools notebooks
FORMATTED := src tests tools
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint format install dev clean notebook

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
	$(PY) -m ruff check $(LINTED)
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(FORMATTED)

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
