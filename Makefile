# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test lint unit test-slow test-hardware bench models models-check seed-models results eval soak clean firmware fuzz-firmware

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

# Retrains the shipped models (about 13 min on 2 cores); at the commit that ships them the files
# come out bit for bit the same. models-check retrains into runs/ and compares (the same
# work folder as models: the data folder it names is recorded in the files).
models: $(VENV)/.stamp-dev
	$(VENV)/bin/roach train-all --out models --seed 0

models-check: $(VENV)/.stamp-dev
	$(VENV)/bin/roach train-all --out runs/models-check --seed 0
	@cmp -s models/mb.onnx runs/models-check/mb.onnx && \
		cmp -s models/grbal.onnx runs/models-check/grbal.onnx || { echo "make models-check: \
	runs/models-check differs from models/ (expected on another CPU family than models/README.md \
	names: docs/training.md, reproducibility)" >&2; exit 1; }
	@echo "models/ reproduced bit for bit"

# The shipped recipe at training seeds 1 and 2 (seed 0 is models/): the suite compares
# every controller over the three.
seed-models: $(VENV)/.stamp-dev
	for s in 1 2; do $(VENV)/bin/roach train-all --out runs/models-seed$$s --seed $$s \
		--no-progress || exit 1; done

# The closed-loop suite: four controllers, each over three training seeds (models/ and
# seed-models) x 4 simulator seeds, against the oracles; then the prediction tables:
# docs/results.md (docs/evaluation.md gives the time it took).
SEEDS3 = models/$(1).onnx,runs/models-seed1/$(1).onnx,runs/models-seed2/$(1).onnx
SUITE_MODELS := --model $(call SEEDS3,grbal) --model $(call SEEDS3,mb) \
	--model $(call SEEDS3,mb):dyn-eval:0.05 --model $(call SEEDS3,grbal):grbal
results: seed-models
	$(VENV)/bin/roach train-oracles --suite paper --out runs/oracles
	$(VENV)/bin/roach eval --suite paper $(SUITE_MODELS) --oracle runs/oracles \
		--episodes 4 --jobs 2 --json runs/eval-paper.json
	$(VENV)/bin/roach results --out docs/results.md --closed-loop runs/eval-paper.json \
		--sweep-minutes 0

# The closed-loop suite alone, without the oracles.
eval: seed-models
	$(VENV)/bin/roach eval --suite paper $(SUITE_MODELS) --episodes 4 --jobs 2 \
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
