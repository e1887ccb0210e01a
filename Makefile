# The interface people use. Every target creates/uses the local virtual environment in .venv,
# so each works from a clean clone with only Python 3.11+, Java 17+ and Maven installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-unit test-faults lint format bench kafka-up kafka-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Run the whole system end to end on local defaults (starts and stops its own Kafka).
demo: $(STAMP)
	$(BIN)/air-exstream demo

## The full test suite: unit, component and end-to-end tests on a real local Kafka broker.
test: $(STAMP)
	$(BIN)/pytest -m "not faults" --durations=20

## Only the fast pure-logic tests.
test-unit: $(STAMP)
	$(BIN)/pytest -m unit

## Fault-injection suite (broker loss and hang, process crashes, outages, state recovery) on
## real brokers.
test-faults: $(STAMP)
	$(BIN)/pytest -m faults --durations=10

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

kafka-up: $(STAMP)
	$(BIN)/air-exstream kafka up

kafka-down: $(STAMP)
	$(BIN)/air-exstream kafka down

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache
