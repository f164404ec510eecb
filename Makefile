# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-spark bench lint clean audit

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo_out
	$(BIN)/tracecode run sample_data --db demo_out/tracecode.duckdb --out demo_out \
		--settings sample_data/tracecode.toml

test: $(STAMP)
	$(BIN)/ruff check src tests flows bench
	$(BIN)/pytest -q -m "not spark"

# the Spark parity tests (local mode, Java 17): minutes of JVM time, so apart; CI runs them
test-spark: $(STAMP)
	$(BIN)/pytest -q -m spark

# one table per stage with its peers (bench/bench_all.py); a day on 14 vs 28 days; where
# ingest's time goes against read_json (bench/bench_parse.py)
bench: $(STAMP)
	$(BIN)/python bench/bench_all.py
	$(BIN)/python bench/bench_history.py
	$(BIN)/python bench/bench_parse.py

# known vulnerabilities with a fix in the locked dependencies fail it (.ci/audit.py)
audit: $(STAMP)
	$(BIN)/python .ci/audit.py $(VENV)

lint: $(STAMP)
	$(BIN)/ruff check src tests flows bench

clean:
	rm -rf $(VENV) demo_out .pytest_cache
