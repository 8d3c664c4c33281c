# Two entry points for a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The sans-IO layers compiled with mypyc, in a copy of the package (scripts/compile.py); without a C
# compiler the directory holds no package and the pure-Python one runs.
COMPILED := $(VENV)/compiled
BUILT    := $(COMPILED)/.built
SOURCES  := $(shell find bridge -name '*.py')
WITH_COMPILED := PYTHONPATH=$(abspath $(COMPILED))
# The tests of the compiled layers, run a second time against the compiled modules.
COMPILED_TESTS := tests/test_compiled.py tests/sip tests/media tests/calls/test_policy.py

.PHONY: run test lint typecheck unit peers bench clean compiled

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(BUILT): $(STAMP) pyproject.toml scripts/compile.py $(SOURCES)
	$(BIN)/python scripts/compile.py $(COMPILED)

compiled: $(BUILT)

run: $(STAMP) $(BUILT)
	@scripts/install-janus.sh
	$(WITH_COMPILED) $(BIN)/spaces-bridge run $(if $(CONFIG),--config $(CONFIG))

peers:
	@scripts/install-peers.sh

lint: $(STAMP)
	$(BIN)/ruff check bridge tests bench scripts/compile.py
	$(BIN)/ruff format --check bridge tests bench scripts/compile.py

typecheck: $(STAMP)
	$(BIN)/mypy bridge tests bench scripts/compile.py

unit: $(STAMP)
	$(BIN)/pytest -m 'not interop'

# The pure package first (what an edit changes at once), then the compiled layers' tests against
# the compiled modules, where they could be built (tests/test_compiled.py proves which ran).
test: $(STAMP) peers lint typecheck $(BUILT)
	$(BIN)/pytest
	@if [ -d $(COMPILED)/bridge ]; then \
		echo "the compiled layers' tests, against the compiled modules:"; \
		SPACES_BRIDGE_COMPILED=1 $(WITH_COMPILED) $(BIN)/pytest -p no:cacheprovider \
			--import-mode=append $(COMPILED_TESTS); \
	else echo "no compiled modules (see scripts/compile.py's message): pure-Python tests only"; fi

# Benchmarks (docs/performance.md): each prints one table. The SIP ones need sipp and two cores,
# take 1-4 minutes each, and callrate installs Kamailio with apt-get when it is missing.
.PHONY: bench-parse bench-callrate bench-dialogs bench-relay bench-media
bench: bench-parse bench-callrate bench-dialogs bench-relay bench-media

bench-parse: $(STAMP) $(BUILT)
	$(WITH_COMPILED) $(BIN)/python bench/parse.py

bench-callrate: $(STAMP) $(BUILT)
	$(WITH_COMPILED) $(BIN)/python bench/callrate.py

bench-dialogs: $(STAMP) $(BUILT)
	$(WITH_COMPILED) $(BIN)/python bench/dialogs.py

# Runs at half the rate bench-callrate last measured (250 calls/s when it has not run).
bench-relay: $(STAMP) $(BUILT)
	$(WITH_COMPILED) $(BIN)/python bench/relay.py

bench-media: $(STAMP) $(BUILT)
	$(WITH_COMPILED) $(BIN)/python bench/media.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
