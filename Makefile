# Rapport: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
RAPPORT = $(VENV)/bin/rapport

.PHONY: setup up down status demo test chaos lint check clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Rapport needs Python 3.11 ($(PYTHON) not found): set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed  ## create .venv and install Rapport with its pinned dependencies

up: setup  ## start the local stack: Kafka (KRaft) and, when installed, clickhouse-server
	$(RAPPORT) stack up

down: setup  ## stop what `make up` started
	$(RAPPORT) stack down

status: setup
	$(RAPPORT) stack status

demo: setup  ## the main job, end to end, on the local stack and embedded chDB
	$(RAPPORT) demo

test: up  ## the whole test suite against the real broker, chDB and the ClickHouse server
	$(PY) -m pytest -q

chaos: up  ## faults against the local stack (see README, Chaos); CHAOS_ARGS="--events 100000"
	$(PY) -m streams.chaos $(CHAOS_ARGS)

lint: setup  ## ruff and mypy
	$(VENV)/bin/ruff check streams schemas sinks tests ops
	$(VENV)/bin/mypy

check: lint test

clean: down
	rm -rf var
