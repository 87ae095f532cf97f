# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Each sets up everything it needs (virtualenv, project with [dev] extras, built-in models) and then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint setup models bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

models: $(STAMP)
	$(VENV)/bin/inferload models build --models models

demo: models
	$(VENV)/bin/inferload demo --models models

test: $(STAMP)
	$(PY) -m pytest -q

# The architecture checks alone (also part of `make test`: tests/test_architecture.py).
lint: $(STAMP)
	$(VENV)/bin/ruff check loadgen server tests benchmarks
	$(VENV)/bin/ruff format --check loadgen server tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: models
	$(PY) benchmarks/served_vs_raw.py

clean:
	rm -rf $(VENV) results .pytest_cache
	find models -name '*.onnx' -delete
