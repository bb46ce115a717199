# Two entry points a newcomer needs: `make pipeline` and `make test` (both set up .venv first).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= train,serve,dev

.PHONY: setup pipeline test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the project with all extras

pipeline: setup  ## run the DVC pipeline offline (ingest, prepare, ...)
	. $(BIN)/activate && dvc repro

test: setup  ## run the test suite
	. $(BIN)/activate && python -m pytest

lint: setup  ## ruff and mypy
	. $(BIN)/activate && ruff check . && ruff format --check . && mypy vicas training serving

clean:
	rm -rf $(VENV) data/interim data/prepared
