# hookstream: `make run` sets everything up and runs the pipeline; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test unit bench clean kafka-start kafka-stop

setup: $(STAMP)
	@$(BIN)/hookstream kafka fetch

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/hookstream dev up --demo

test: setup
	bash ops/system-deps.sh
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python bench/http_clients.py

kafka-stop:
	$(BIN)/hookstream kafka stop

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
