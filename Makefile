# Two entry points for a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit peers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: $(STAMP)
	@scripts/install-janus.sh
	$(BIN)/spaces-bridge run $(if $(CONFIG),--config $(CONFIG))

peers:
	@scripts/install-peers.sh

lint: $(STAMP)
	$(BIN)/ruff check bridge tests bench
	$(BIN)/ruff format --check bridge tests bench

typecheck: $(STAMP)
	$(BIN)/mypy bridge tests bench

unit: $(STAMP)
	$(BIN)/pytest -m 'not interop'

test: $(STAMP) peers lint typecheck
	$(BIN)/pytest

# Benchmarks (docs/performance.md): each prints one table. The SIP ones need sipp and two cores,
# take 1-4 minutes each, and callrate installs Kamailio with apt-get when it is missing.
.PHONY: bench-parse bench-callrate bench-dialogs bench-relay bench-media
bench: bench-parse bench-callrate bench-dialogs bench-relay bench-media

bench-parse: $(STAMP)
	$(BIN)/python bench/parse.py

bench-callrate: $(STAMP)
	$(BIN)/python bench/callrate.py

bench-dialogs: $(STAMP)
	$(BIN)/python bench/dialogs.py

# Runs at half the rate bench-callrate last measured (250 calls/s when it has not run).
bench-relay: $(STAMP)
	$(BIN)/python bench/relay.py

bench-media: $(STAMP)
	$(BIN)/python bench/media.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
