# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test lint unit test-slow test-hardware bench models results eval soak clean firmware fuzz-firmware

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

# make demo BOARD=c runs the C firmware in the loop (needs gcc).
demo: $(VENV)/.stamp-demo
	$(VENV)/bin/roach demo $(if $(BOARD),--board $(BOARD))

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

# The robot's install: the `onboard` extra only (no PyTorch, no MuJoCo), plus the test runner.
ROBOT_VENV := .venv-robot
$(ROBOT_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(ROBOT_VENV)
	$(ROBOT_VENV)/bin/python -m pip install -q --upgrade pip
	$(ROBOT_VENV)/bin/python -m pip install -q -e '.[onboard]' 'pytest>=8' 'pytest-timeout>=2.3'
	touch $@

# Hardware-in-the-loop tests against a real robot, from the robot's install:
# make test-hardware PORT=/dev/ttyAMA0
test-hardware: $(ROBOT_VENV)/.stamp
	$(ROBOT_VENV)/bin/pytest -m hardware --port $(PORT) tests/hardware -v

bench: $(VENV)/.stamp-dev
	$(VENV)/bin/roach bench all

# Retrains the shipped models (about an hour on 2 cores).
models: $(VENV)/.stamp-dev
	$(VENV)/bin/roach train-all --out models --seed 0

# The closed-loop suite against its oracles, then the prediction tables: docs/results.md
# (83 min on 2 cores, measured 2026-12-02: 15 oracles 20 min, the suite with five
# controllers and the oracles at 10 seeds 62 min, the prediction tables the rest).
SUITE_MODELS := --model models/grbal.onnx:grbal --model models/mb.onnx \
	--model models/mb.onnx:dyn-eval:0.05 --model models/grbal.onnx:none \
	--model models/grbal.onnx:dyn-eval:0.05
results: $(VENV)/.stamp-dev
	$(VENV)/bin/roach train-oracles --suite paper --out runs/oracles
	$(VENV)/bin/roach eval --suite paper $(SUITE_MODELS) --oracle runs/oracles \
		--episodes 10 --jobs 2 --json runs/eval-paper.json
	$(VENV)/bin/roach results --out docs/results.md --closed-loop runs/eval-paper.json \
		--sweep-minutes 0

# The closed-loop suite alone (docs/evaluation.md): the shipped models, 10 seeds.
eval: $(VENV)/.stamp-dev
	$(VENV)/bin/roach eval --suite paper $(SUITE_MODELS) --episodes 10 --jobs 2 \
		--json runs/eval-paper.json

# The motor board's C firmware for the host, Cortex-M0+ (RP2040) and Cortex-M4, with flash
# and RAM per target (docs/firmware.md); needs gcc and gcc-arm-none-eabi.
firmware:
	$(MAKE) -s -C firmware_bridge/board all

# The sanitizer fuzz of the C firmware for FUZZ_SECONDS of CPU time (default 300; make test runs 3).
fuzz-firmware:
	$(MAKE) -s -C firmware_bridge/board fuzz FUZZ_SECONDS=$(or $(FUZZ_SECONDS),300)

# One simulated hour in lockstep (docs/reliability.md).
soak: $(VENV)/.stamp-dev
	$(VENV)/bin/roach soak --hours 1 --log runs/soak.mcap

clean:
	rm -rf $(VENV) $(ROBOT_VENV) .pytest_cache .mypy_cache .ruff_cache
