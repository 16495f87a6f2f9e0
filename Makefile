# StemeDB developer commands. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PY_SOURCES := $(shell find src services clients/python -name '*.py' -not -path '*/node_modules/*' 2>/dev/null | LC_ALL=C sort)
STAMP := $(VENV)/.installed
# The list of Python files, rewritten only when a file is added or removed (see $(STAMP)).
PY_LIST := $(VENV)/.python-files
$(shell mkdir -p $(VENV) && printf '%s\n' $(PY_SOURCES) > $(PY_LIST).tmp && \
  { cmp -s $(PY_LIST).tmp $(PY_LIST) && rm -f $(PY_LIST).tmp || mv -f $(PY_LIST).tmp $(PY_LIST); })


.PHONY: help venv install protos vectors nodetest sysdeps promtool fuse etcd lint typecheck buflint test test-fast bench torture fuzz run clean

help:
	@echo "make run      start writer + ingestor on loopback (data under ./data)"
	@echo "make test     lint, type-check, buf lint and the whole test suite"
	@echo "make bench    benchmarks; rewrites docs/benchmarks.md"
	@echo "make torture  long crash-torture runs"
	@echo "make protos   regenerate src/stemedb/v1 from protos/"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

# The editable install is "strict" (a tree of symlinks under build/) so that mypy sees the
# package exactly as installed. An edited file is already installed (its link points at it), so
# the install is redone when the LIST of Python files changes (one added or removed: a link to
# make or drop) or pyproject.toml does, never because a file's time changed.
$(STAMP): $(PY) pyproject.toml $(PY_LIST)
	flock $(VENV)/.install.lock $(PIP) install --quiet -e '.[dev]' --config-settings editable_mode=strict
	touch $(STAMP)

venv install: $(STAMP)

protos: $(STAMP)
	$(PY) tools/gen_protos.py

vectors: $(STAMP)
	$(PY) tools/gen_vectors.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy -p stemedb

buflint: tools/node_modules/.bin/buf
	tools/node_modules/.bin/buf lint

tools/node_modules/.bin/buf: tools/package.json tools/package-lock.json
	cd tools && npm ci --silent --no-audit --no-fund
	touch $@

NODE_CLIENT := clients/node

$(NODE_CLIENT)/node_modules/.package-lock.json: $(NODE_CLIENT)/package.json $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --silent --no-audit --no-fund
	touch $@

nodetest: $(STAMP) $(NODE_CLIENT)/node_modules/.package-lock.json
	cd $(NODE_CLIENT) && npm test && npm run --silent typecheck

# Debian packages the tests and benchmarks use: prometheus (and promtool) for tests/deploy and
# the real scrape test, fuse3 for powerfs (tests/faults), chromium and chromium-driver for the
# explorer's browser test, etcd-server as the benchmarks' baseline, zsh for the CLI's zsh
# completion test. Idempotent: apt runs only when a command is missing, and installs only what
# is missing.
SYSDEP_CMDS := promtool:prometheus prometheus:prometheus fusermount3:fuse3 \
	chromium:chromium chromedriver:chromium-driver etcd:etcd-server zsh:zsh
sysdeps:
	@missing=""; for pair in $(SYSDEP_CMDS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

promtool fuse etcd: sysdeps

# The suite runs in TEST_WORKERS processes (pytest-xdist), each test file on one worker (its
# module fixtures shared as before): most tests wait on real servers, so workers overlap the
# waits on 2 cores. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 3
test: lint typecheck buflint sysdeps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 -m "not torture and not bench" tests
	$(MAKE) nodetest

test-fast: $(STAMP)
	$(PY) -m pytest -x -q -m "not torture and not bench and not slow" tests

bench: $(STAMP) sysdeps
	$(PY) -m pytest -m bench -s --timeout 3600 tests/bench
	$(PY) tools/bench_report.py

fuzz: $(STAMP)
	STEMEDB_FUZZ_EXAMPLES=5000 $(PY) -m pytest -s tests/writer/test_fuzz.py tests/ingestor/test_store_fuzz.py tests/gateway/test_openapi.py

torture: $(STAMP) sysdeps
	$(PY) -m pytest -m torture -s tests

run: $(STAMP)
	$(PY) tools/run_local.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
