# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Each sets up everything it needs (virtualenv, project with [dev] extras, built-in models) and then runs.
# The virtualenv is installed from the lock, requirements/dev.txt (exact versions, hashes checked), not from the
# ranges in pyproject.toml: a new release of ruff, mypy or anything else changes nothing until `make lock` is run
# and the lock committed. See requirements/README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements/dev.txt

.PHONY: demo test test-fast lint setup models bench clean lock docs protos openvino test-openvino

# Rebuilt when the lock changes (and when pyproject.toml does: entry points, package metadata).
# --require-hashes: every package, with its dependencies, must be in the lock with a matching hash.
# --no-build-isolation: the project is built with the lock's setuptools instead of whatever setuptools is newest.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# The OpenVINO environment (docs/providers.md): ONNX Runtime's variants all install the `onnxruntime` module, so
# onnxruntime-openvino lives in its own venv, from its own lock (requirements/openvino.txt: dev.txt with onnxruntime
# swapped for onnxruntime-openvino, hashes checked).
OV_VENV  := .venv-openvino
OV_STAMP := $(OV_VENV)/.installed-stamp
$(OV_STAMP): requirements/openvino.txt pyproject.toml
	$(PYTHON) -m venv $(OV_VENV)
	$(OV_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/openvino.txt
	$(OV_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(OV_STAMP)

openvino: $(OV_STAMP)

# The provider tests (`-m openvino`) in the OpenVINO environment (CI runs them after `make test`).
test-openvino: $(OV_STAMP)
	$(OV_VENV)/bin/python -m pytest -q -m openvino -p no:xdist

models: $(STAMP)
	$(VENV)/bin/inferload models build --models models

demo: models
	$(VENV)/bin/inferload demo --models models

# Two passes, both always run: every test outside the `timing` lane on TEST_JOBS processes (pytest-xdist, a test
# module per process at a time: most of the suite waits on servers and fixed-length load runs, so two share two
# cores well), then the `timing` lane on its own, at most TIMING_JOBS of its modules side by side (each judges
# measured time against a truth or reference measured in the same test, so a neighbour moves both; nothing else
# runs beside them). Fails (with the first failing pass's exit code; 5 = nothing collected) if either does.
TEST_JOBS   ?= 2
TIMING_JOBS ?= 2
test: $(STAMP)
	@$(PY) -m pytest -q -m "not timing" -n $(TEST_JOBS) --dist loadfile; a=$$?; \
	$(PY) -m pytest -q -m timing -n $(TIMING_JOBS) --dist loadfile; b=$$?; \
	if [ $$a -ne 0 ] || [ $$b -ne 0 ]; then echo "make test: first pass exited $$a, timing pass exited $$b" >&2; \
	exit $$(( a != 0 ? a : b )); fi

# The edit loop: every test that starts nothing real, judges no measured time and takes no seconds (tests/conftest.py).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not e2e and not timing and not slow" -p no:xdist

# The architecture checks alone (also part of `make test`: tests/test_architecture.py).
lint: $(STAMP)
	$(VENV)/bin/ruff check loadgen server tests benchmarks
	$(VENV)/bin/ruff format --check loadgen server tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: models
	$(PY) benchmarks/served_vs_raw.py

# The documentation site (mkdocs.yml, docs/) into site/: first the generated reference pages (CLI, configuration,
# result schemas, metric names; scripts/gen_docs_reference.py), then a strict build (any warning fails).
docs: $(STAMP)
	$(PY) scripts/gen_docs_reference.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The gRPC descriptor modules (server/oip_grpc/descriptors.py, loadgen/engine/oip_grpc/descriptors.py) from the vendored
# upstream .proto files, with the lock's grpcio-tools (scripts/gen_protos.py; tests/foundation/test_protos.py checks them).
protos: $(STAMP)
	$(PY) scripts/gen_protos.py

# --- the lock (requirements/README.md) ---
# `make lock` re-resolves requirements/*.txt from pyproject.toml's ranges after you edit them, keeping every
# existing pin that still fits; `make lock LOCK_ARGS=--upgrade` moves everything to the newest allowed versions,
# `make lock LOCK_ARGS='--upgrade-package ruff'` one package. Run it on the CI platform: CPython 3.11, Linux x86_64
# (pip-compile resolves environment markers for the interpreter it runs on). pip-tools itself runs from its own
# venv, installed from requirements/lock-tools.txt (pinned, hashed). Takes 1-4 minutes (PyPI look-ups).
LOCK_VENV   := .tools/lock-venv
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --no-config --quiet \
	--generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	--unsafe-package inferload $(LOCK_ARGS)

$(LOCK_VENV)/.installed-stamp: requirements/lock-tools.txt
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/lock-tools.txt
	touch $@

lock: $(LOCK_VENV)/.installed-stamp
	@$(LOCK_VENV)/bin/python -c 'import platform, sys; ok = sys.version_info[:2] == (3, 11) and sys.platform == "linux" and platform.machine() == "x86_64"; sys.exit(0 if ok else "make lock: run it with CPython 3.11 on Linux x86_64 (the CI platform), e.g. PYTHON=python3.11; this is " + sys.version.split()[0] + " on " + sys.platform + " " + platform.machine())'
	$(PIP_COMPILE) --extra dev -o requirements/dev.txt pyproject.toml requirements/build.in
	$(PIP_COMPILE) --extra server -c requirements/dev.txt -o requirements/server.txt pyproject.toml requirements/build.in
	$(PIP_COMPILE) --extra loadgen -c requirements/dev.txt -o requirements/loadgen.txt pyproject.toml requirements/build.in
	$(PIP_COMPILE) -o requirements/lock-tools.txt requirements/lock-tools.in
	$(LOCK_VENV)/bin/python scripts/lock_variant.py $(PIP_COMPILE) -- requirements/dev.txt requirements/openvino.in requirements/openvino.txt
	$(LOCK_VENV)/bin/python scripts/lock_variant.py $(PIP_COMPILE) -- requirements/server.txt requirements/openvino.in requirements/server-openvino.txt
	$(LOCK_VENV)/bin/python scripts/lock_variant.py $(PIP_COMPILE) -- requirements/server.txt requirements/gpu.in requirements/server-gpu.txt
	$(LOCK_VENV)/bin/python scripts/lock_variant.py $(PIP_COMPILE) -- requirements/dev.txt requirements/gpu.in requirements/gpu.txt

clean:
	rm -rf $(VENV) $(OV_VENV) results .pytest_cache
	find models -name '*.onnx' -delete
