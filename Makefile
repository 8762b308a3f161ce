# Two commands for a new user: `make run` starts the gateway, `make test` runs every test.
VENV    := .venv
PY      := $(VENV)/bin/python
GATEWAY := $(VENV)/bin/gateway
DEV     := GATEWAY_CONFIG=deploy/development.toml

.PHONY: run test lint bench docs system-packages clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

## Start the gateway on the embedded default (SQLite, maildir capture, dev key and certificate).
run: $(VENV)/.installed
	@mkdir -p var && touch var/.make-run  # the CLI may then default to the development file
	$(DEV) $(GATEWAY) db upgrade
	$(DEV) $(GATEWAY) demo
	$(DEV) exec $(GATEWAY) serve

## Run the whole test suite (SQLite and PostgreSQL), one process per core (up to 4); a
## file's tests stay in one process (they share fixtures such as a Redis database).
test: $(VENV)/.installed system-packages
	$(PY) -m ruff check gateway suppression tests bench
	$(PY) -m mypy
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile

system-packages:
	scripts/install-system-packages.sh

## Regenerate the reference generated from the code (docs/cli.md, docs/smtp-replies.md,
## docs/configuration.md, deploy/production.example.toml).
docs: $(VENV)/.installed
	$(PY) -m gateway.cli.reference > docs/cli.md
	$(PY) -m gateway.web.api.reference > docs/api.md
	$(PY) -m gateway.protocol.reference > docs/smtp-replies.md
	$(PY) -m gateway.config.reference > docs/configuration.md
	$(PY) -m gateway.config.reference example > deploy/production.example.toml
	$(PY) -m gateway.lawful.reference > docs/lawful-basis.md

bench: $(VENV)/.installed system-packages
	$(PY) bench/relay_throughput.py

clean:
	rm -rf var/ var-tenant-keys/ .pytest_cache
