# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test lint unit test-slow test-hardware bench models results eval soak clean

$(VENV)/.stamp-demo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[onboard,sim]'
	touch $@

$(VENV)/.stamp-dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.stamp-demo

demo: $(VENV)/.stamp-demo
	$(VENV)/bin/roach demo

LINTED := robot_contract firmware_bridge onboard offboard_training tools tests

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

unit: $(VENV)/.stamp-dev
	$(VENV)/bin/pytest -m "not slow and not hardware" -q

test: lint unit

test-slow: $(VENV)/.stamp-dev
	$(VENV)/bin/pytest -m slow -q

# Hardware-in-the-loop tests against a real robot: make test-hardware PORT=/dev/ttyAMA0
test-hardware: $(VENV)/.stamp-dev
	$(VENV)/bin/pytest -m hardware --port $(PORT) tests/hardware -v

bench: $(VENV)/.stamp-dev
	$(VENV)/bin/roach bench all

# Retrains the shipped models (about an hour on 2 cores).
models: $(VENV)/.stamp-dev
	$(VENV)/bin/roach train-all --out models --seed 0

results: $(VENV)/.stamp-dev
	$(VENV)/bin/roach results --out docs/results.md

# The closed-loop suite (docs/evaluation.md): both shipped models, 10 seeds, about 20 min.
eval: $(VENV)/.stamp-dev
	$(VENV)/bin/roach eval --suite paper --model models/grbal.onnx --model models/mb.onnx \
		--episodes 10 --jobs 2 --json runs/eval-paper.json

# One simulated hour in lockstep (docs/reliability.md).
soak: $(VENV)/.stamp-dev
	$(VENV)/bin/roach soak --hours 1 --log runs/soak.mcap

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
