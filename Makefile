# hookstream: `make run` sets everything up and runs the pipeline; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test unit bench bench-quick bench-deps bench-http faults clean kafka-start kafka-stop

setup: $(STAMP)
	@$(BIN)/hookstream kafka fetch

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/hookstream dev up --demo

# Two pytest processes (pytest-xdist): most integration tests wait on a broker or a worker, not a
# core. Each process has its own session broker; a test file stays in one process, and every test
# on the three-node cluster runs in the same one (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: setup
	bash ops/system-deps.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# `make bench`: end to end, side by side with the Celery + Redis design (one task per delivery; docs/benchmarks.md).
# Installs the baseline's needs (the `bench` extra; Debian's redis-server, as root) when missing.
BENCH_ARGS ?=
bench: bench-deps
	$(BIN)/hookstream kafka fetch
	$(BIN)/hookstream bench $(BENCH_ARGS)

bench-quick: BENCH_ARGS += --quick
bench-quick: bench

bench-deps: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,bench]'
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	  else echo "bench: redis-server is missing (apt-get install redis-server); the Celery baseline will be skipped" >&2; fi; }

# `make faults`: every fault scenario at the long size, each on fresh brokers of its own (docs/operations.md, "Faults").
# `make test` runs the short form (tests/faults).
FAULTS_ARGS ?=
faults: setup
	$(BIN)/hookstream chaos --size long $(FAULTS_ARGS)

bench-http: $(STAMP)
	$(BIN)/python bench/http_clients.py

kafka-stop:
	$(BIN)/hookstream kafka stop

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
