# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 4
PORT ?= 5000

.PHONY: run test lint install dev clean bench fuzz chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,demo,redis,postgresql]'
	touch $(STAMP)

install: $(STAMP) chromium

# Browser tests (tests/browser) drive Debian's Chromium, launched by path; Playwright's own
# browser download is never used. Installed here when missing and we are root; otherwise the
# browser tests skip with one line (or fail under DOVETAIL_REQUIRE_BROWSER=1, as in .ci/run).
# A CJK font (fonts-wqy-microhei) makes the Chinese text readable in the screenshots.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -x "$(CHROMIUM)" ] && fc-list :lang=zh 2>/dev/null | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing Chromium for the browser tests (apt-get install chromium)"; \
		apt-get install -y -q chromium fonts-wqy-microhei >/dev/null \
		|| { apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-wqy-microhei >/dev/null; } \
		|| echo "== could not install Chromium: browser tests will skip"; \
	else echo "== no $(CHROMIUM) and not root: browser tests will skip (apt-get install chromium)"; fi

run: $(STAMP)
	$(BIN)/dovetail init --if-new
	$(BIN)/dovetail run --host 127.0.0.1 --port $(PORT)

# ruff (with complexity <= 15 and no function-local imports), the import contracts
# (pyproject.toml [tool.importlinter]) and mypy on the core; .pre-commit-config.yaml runs the same.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# SQLite always; PostgreSQL too when DOVETAIL_TEST_DATABASE_URL is set (.ci/run sets it).
test: $(STAMP) chromium lint
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
