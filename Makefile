# The two commands of README.md's quick start: `make demo` and `make test`.
# Each creates or updates .venv first, so a fresh clone needs nothing else.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The suite waits on servers and subprocesses more than it computes: four workers
# on two cores halve its time (pytest-xdist).
WORKERS ?= 4

.PHONY: demo demo-instances demo-fleet test lint typecheck services tox clean

$(STAMP): setup.cfg pyproject.toml sampleproject/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -r sampleproject/requirements.txt
	touch $@

services:
	bash scripts/ensure-services.sh

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Two testing instances from staging, both serving their branch, then destroyed (issue 15).
demo-instances: $(STAMP)
	$(BIN)/python scripts/demo_instances.py

# Three sshd test hosts on loopback: a parallel deploy, a rolling one, rollback (issue 14).
demo-fleet: $(STAMP)
	bash scripts/ensure-sshd.sh
	$(BIN)/python scripts/demo_fleet.py

test: $(STAMP) services
	rm -f .coverage .coverage.*
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/coverage run -m pytest -n $(WORKERS) --durations=30 $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# tox finds Python 3.12 and 3.13 where pyenv keeps them, when it keeps them.
PYENV_BINS := $(subst $(eval) ,:,$(wildcard $(HOME)/.pyenv/versions/3.1[23].*/bin))

tox: $(STAMP)
	PATH="$(PYENV_BINS):$$PATH" $(BIN)/tox $(TOX_ARGS)

clean:
	rm -rf $(VENV) var .cd .tox .coverage .coverage.* htmlcov
