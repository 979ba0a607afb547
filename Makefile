# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 4
PORT ?= 5000

.PHONY: run test lint install dev clean bench fuzz

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,demo,redis,postgresql]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dovetail init --if-new
	$(BIN)/dovetail run --host 127.0.0.1 --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .

# SQLite always; PostgreSQL too when DOVETAIL_TEST_DATABASE_URL is set (.ci/run sets it).
test: $(STAMP) lint
	env -u DOVETAIL_TEST_DATABASE_URL $(BIN)/python -m pytest -n $(JOBS)
	@if [ -n "$$DOVETAIL_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$DOVETAIL_TEST_DATABASE_URL"; \
		$(BIN)/python -m pytest -n $(JOBS); fi

# Schemathesis over /api/v1/openapi.json as admin, rep and anonymous, 20 examples per
# operation, on SQLite with demo data (minutes; not part of `make test`). On PostgreSQL:
# make fuzz FUZZ_ARGS="--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test"
fuzz: $(STAMP)
	$(BIN)/python tests/fuzz/run_schemathesis.py $(FUZZ_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
