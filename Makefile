# chromalab: `make repro` builds the default pipeline, `make test` runs the tests.
# Both create .venv with the machine's python3 and install the pinned stack (constraints.txt).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv's tools first on PATH, so dvc's stage commands (`python pipeline/...`) use them too.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: setup repro test bench lock clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

repro: setup
	$(RUN) dvc repro

test: setup
	$(RUN) pytest

# Speed and memory figures -> reports/benchmarks.json and the table in README.md (run `make repro`
# first so the no-op `dvc repro` time can be measured).
bench: setup
	$(RUN) python benchmarks/bench.py

# Refresh the pins after changing dependencies in pyproject.toml (then commit constraints.txt).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^chromalab' > constraints.txt

clean-venv:
	rm -rf $(VENV)
