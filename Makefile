# Two commands do all set-up on a fresh machine (Python 3.11): `make run` and `make test`.
# Both create and reuse .venv, install torch==2.13.0 (the local CPU build) and the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zeb-installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export WANDB_MODE ?= offline

.PHONY: run test lint docs bench venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The main job on the embedded default: train from scratch for 20 minutes (local store, one local Prefect
# server whose UI link it prints, W&B offline), then report. Run it again to continue. MINUTES=5 make run for a shorter budget.
MINUTES ?= 20
run: $(STAMP)
	$(BIN)/zeb train --minutes $(MINUTES)

# The browser test needs Debian's chromium and chromedriver; the script installs them only where missing.
# Two pytest-xdist workers (CI has 2 cores): about 12 minutes here instead of 20 on one.
# TEST_WORKERS=0 runs the suite in this one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	sh tests/browser_setup.sh
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# Lint, format check and zeb_core's types (configured in pyproject.toml); `$(BIN)/ruff format .` applies the formatting.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The docs site (mkdocs.yml; docs/ -> site/), strict: a broken link or anchor, or a page outside the nav, fails.
# Not -q: mkdocs counts only the warnings it prints.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/match.py
	$(BIN)/python bench/selfplay.py
	$(BIN)/python bench/store.py
	$(BIN)/python bench/learner.py

clean:
	rm -rf $(VENV) .pytest_cache artifacts site
