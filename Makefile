# Quick start: `make demo` (train then predict on the bundled sample data), `make test`.
# Each target installs what it needs into .venv first (pinned by constraints.txt).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/seqcast sample --out data/sample
	$(BIN)/seqcast train --config configs/sample-load.yaml
	$(BIN)/seqcast predict --config configs/sample-load.yaml

# Two workers (pytest-xdist): the suite is mostly waiting on Prefect servers, subprocesses
# and small models, so two share a 2-core machine well (14 min -> about 9 on CI's).
# `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check src tasks flows tests benchmarks
	$(BIN)/ruff format --check src tasks flows tests benchmarks
	$(BIN)/mypy

# The figures of benchmarks/README.md; results.json. Figure 7 (real data) needs the bench
# extra (statsmodels) and downloads the pinned sktime wheel once for its bundled CSVs;
# figure 8 (classification archive sets) reads the same wheel's .ts files.
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf .seqcast data/sample
