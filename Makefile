# Every target creates .venv from a fresh clone and installs what it needs: `run` the bot alone,
# `test` and `lint` the dev extra (tests, ruff, mypy, and the optional features they test),
# `bench` the bench extra. Each install is pinned by constraints.txt (the versions CI tested).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/bot.yaml
PIP_INSTALL := $(BIN)/python -m pip install --quiet

.PHONY: run test bench lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip

# One stamp per set of extras: `make run` on a fresh clone installs no matplotlib or pytest.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[bench]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/qunbot run --config $(CONFIG)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
