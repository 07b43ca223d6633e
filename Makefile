# The two commands from a fresh clone: `make run` and `make test`. Everything installs into .venv.
# Python 3.12+ is required (.python-version); PYTHON may point at any 3.12+ interpreter.
PYTHON ?= $(shell command -v python3.12 || command -v python3.13 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench lint format venv migrate demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

demo: migrate
	$(BIN)/python manage.py demo_users
	$(BIN)/python manage.py demo_data

# Development server: SQLite and keys under var/ (created 0600 on first use), demo users, gunicorn on 127.0.0.1.
run: demo
	$(BIN)/gunicorn appliance.wsgi:application --bind $(HOST):$(PORT) --workers 2 --access-logfile - --log-level info

# The whole suite on SQLite; with DATABASE_URL=postgres://... the same suite on PostgreSQL.
test: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy appliance audit

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
