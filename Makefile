# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-spark bench bench-city bench-province lint clean audit

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
# ingest's time goes against read_json (bench/bench_parse.py): minutes
bench-city: $(STAMP)
	$(BIN)/python bench/bench_all.py
	$(BIN)/python bench/bench_history.py
	$(BIN)/python bench/bench_parse.py

# a province day (4-5M messages, 50,000 files) added to a 1-day and to a 5-day history
# (10M and 60M codes): over an hour, 21 GB for the world (PROVINCE_WORLD reuses one that
# `tracecode simulate` wrote) and about 40 GB for the database and DuckDB's spill
PROVINCE_WORLD ?=
bench-province: $(STAMP)
	$(BIN)/python bench/bench_all.py --scale province-day --days 6 --seed 4 \
		--layout per-institution --one-day --compare-history-days 1 \
		$(if $(PROVINCE_WORLD),--world $(PROVINCE_WORLD))

bench: bench-city bench-province

# known vulnerabilities with a fix in the locked dependencies fail it (.ci/audit.py)
audit: $(STAMP)
	$(BIN)/python .ci/audit.py $(VENV)

lint: $(STAMP)
	$(BIN)/ruff check src tests flows bench

clean:
	rm -rf $(VENV) demo_out .pytest_cache
