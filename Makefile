# Two entry points a newcomer needs: `make pipeline` and `make test` (both set up .venv first).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= train,serve,bulk,dev

.PHONY: system setup pipeline run serve test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

system:  ## Debian packages beside Python: Tesseract + Vietnamese data (OCR), fonts for the generated images
	@./scripts/system-packages.sh

setup: system $(VENV)/.installed  ## system packages, then .venv with the project and all extras

pipeline: setup  ## run the DVC pipeline offline: data, training, baseline, export, evaluation
	. $(BIN)/activate && dvc repro

run: pipeline serve  ## the main job: pipeline, then the API on http://127.0.0.1:8000 with a fresh key

serve: setup  ## the API and review console on the exported model; prints a partner key and the first admin
	@test -f .env || (umask 077 && echo "VICAS_SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" > .env)
	@. $(BIN)/activate && echo "API key for local testing (shown once):" && \
	  vicas keys create --name "local-$$(date +%s)" && \
	  vicas users ensure-admin && \
	  echo "review console: http://127.0.0.1:8000/console/" && \
	  vicas serve --host 127.0.0.1 --port 8000

test: setup  ## run the test suite
	. $(BIN)/activate && python -m pytest

lint: setup  ## ruff and mypy
	. $(BIN)/activate && ruff check . && ruff format --check . && mypy vicas training serving

clean:
	rm -rf $(VENV) data/interim data/prepared
