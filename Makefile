# Every target creates .venv from a fresh clone and installs what it needs.
# PYTHON picks the interpreter that makes .venv (3.11 or newer): make PYTHON=python3.12 test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/bot.yaml
SUPPORTED := import sys; sys.exit(sys.version_info < (3, 11))

.PHONY: run test bench lint clean

# A .venv made by an older Python (or one whose Python is gone) cannot run qunbot: make a new one.
ifneq ($(wildcard $(BIN)/python),)
ifneq ($(shell $(BIN)/python -c '$(SUPPORTED)' >/dev/null 2>&1 && echo ok),ok)
$(info $(VENV) was made by $(shell $(BIN)/python -V 2>&1 || echo a Python that is gone); qunbot needs 3.11 or newer: making it again)
$(shell rm -rf $(VENV))
endif
endif

$(BIN)/python:
	@$(PYTHON) -c '$(SUPPORTED)' 2>/dev/null || { \
		echo "$(PYTHON) is $$($(PYTHON) -V 2>&1 || echo missing); qunbot needs Python 3.11 or newer: make PYTHON=python3.11 $(MAKECMDGOALS)" >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/qunbot run --config $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
