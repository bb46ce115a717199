# Two entry points a newcomer needs: `make pipeline` and `make test` (both set up .venv first).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= train,serve,bulk,dev
# every pinned version for Python 3.11 and the extras above (not `nudity`); `make lock` refreshes it
LOCK ?= requirements/lock-py311.txt
LOCK_FLAGS ?=

.PHONY: system setup lock pipeline run serve test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Python 3.11: the locked versions, then the project itself without resolving again. Another Python (3.12 and
# 3.13 serve: EXTRAS=serve) or a narrower EXTRAS: the project's own ranges, resolved by pip (unlocked).
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	@if $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' && \
	    [ "$(EXTRAS)" = "train,serve,bulk,dev" ]; then \
	  $(BIN)/python -m pip install --quiet -r $(LOCK) && \
	  $(BIN)/python -m pip install --quiet --no-deps -e .; \
	else \
	  echo "not the locked set (Python 3.11, EXTRAS=train,serve,bulk,dev): installing .[$(EXTRAS)] unlocked"; \
	  $(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'; \
	fi
	touch $@

system:  ## Debian packages beside Python: Tesseract + Vietnamese data (OCR), fonts for the generated images
	@./scripts/system-packages.sh

setup: system $(VENV)/.installed  ## system packages, then .venv with the project and all extras

lock: | $(BIN)/python  ## refresh the lock from pyproject.toml (pip's resolver; LOCK_FLAGS=--upgrade to move pins)
	$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  (echo "make lock needs Python 3.11 in $(VENV)"; exit 1)
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4'
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet $(LOCK_FLAGS) --extra train,serve,bulk,dev \
	  --no-emit-index-url --no-emit-find-links --strip-extras --allow-unsafe -o $(LOCK) pyproject.toml
	@! grep -E '^(nvidia-|cuda|triton)' $(LOCK) | grep -v '^nvidia-ml-py==' || \
	  (echo "$(LOCK) pulls CUDA packages: keep torch at the CPU build"; exit 1)
	@grep -q '^torch==2.13.0+cpu$$' $(LOCK) || (echo "$(LOCK) does not pin the CPU torch 2.13.0"; exit 1)

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
