# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first when it is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ALPHA_HOME ?= $(CURDIR)/.alpha
export ALPHA_HOME
export DAGSTER_HOME := $(ALPHA_HOME)/dagster
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export YOLO_OFFLINE := True
export YOLO_AUTOINSTALL := False
export MLFLOW_ALLOW_FILE_STORE := true
# Model budgets that fit 2 cores (the demo's 10 minutes); ALPHA_MODEL_BUDGET=seed trains at the seed's sizes.
ALPHA_MODEL_BUDGET ?= demo
export ALPHA_MODEL_BUDGET
# One planned event per asset for a range run, not one per partition (see alpha_assets/cli.py _home).
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := true

.PHONY: setup lock demo test test-fast test-all lint ui bench clean

$(VENV)/bin/alpha: requirements.lock .ci/setup-venv.sh pyproject.toml
	bash .ci/setup-venv.sh

setup:
	bash .ci/setup-venv.sh

# Re-resolve the whole stack from pyproject.toml[dev] + constraints.txt into requirements.lock (then commit it).
lock:
	bash .ci/lock.sh

demo: $(VENV)/bin/alpha
	$(VENV)/bin/alpha demo

# The lean default run (no slow or service-backed tests).
test-fast: $(VENV)/bin/alpha
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -m "not slow and not service and not postgres"

# Everything CI runs: the linters, the type checker and every test but the two heavy benchmark smoke runs (the other
# benchmarks' --quick forms run, alpha_assets_tests/integration/test_benchmarks_quick.py). PostgreSQL-backed tests
# run when ALPHA_TEST_PG_URL is set (.ci/run sets it). --durations=30 puts the slowest tests in the log;
# pyproject's pytest-timeout fails a test hung past 2400 s.
test: $(VENV)/bin/alpha
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q --durations=30 -m "not heavy"

# make test, then the heavy benchmark smoke runs (scale.py and research.py --quick: 12 and 5 min on 2 cores under
# load, beyond CI's budget); fails as soon as either part fails.
test-all: $(VENV)/bin/alpha
	$(MAKE) test
	$(VENV)/bin/pytest -q --durations=10 -m heavy

lint: $(VENV)/bin/alpha
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports && $(VENV)/bin/mypy

ui: $(VENV)/bin/alpha
	mkdir -p $(DAGSTER_HOME) && [ -f $(DAGSTER_HOME)/dagster.yaml ] || cp deploy/local/dagster.yaml $(DAGSTER_HOME)/
	@# Started in the background, a shell ignores SIGINT, and dagster maps SIGTERM to the SIGINT handler: reset it
	@# so that `kill <pid>` stops the UI (and its daemon, webserver and code server) as Ctrl-C does.
	$(VENV)/bin/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
		$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: $(VENV)/bin/alpha
	# altdata.py runs the altdata_vision and altdata_text measurements (each also runs alone); _common is a module
	for b in benchmarks/*.py; do case $$b in benchmarks/_*|benchmarks/altdata_*) continue;; esac; \
	  echo "== $$b"; s=$$SECONDS; $(PY) $$b --quick || exit 1; echo "== $$b: $$((SECONDS - s)) s"; done

clean:
	rm -rf .alpha .pytest_cache
