"""Runs the controller's start-up work once on the robot before a bundle goes live (run at
activation by ``activate.py``): ``python -m onboard.deploy.check --model M [--config C]``.

The same work ``roach run`` does before the robot moves (onboard/warmup.py) plus the
task's tracking, through the import path the service uses and with the robot's Python:
the config and the model load and pass their checks, and an adaptation step and two plans
run. A bundle that cannot do that here (a package missing, a model this code refuses) is
switched back before the service runs it.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from onboard.adaptation import Adapter
from onboard.config import load_config
from onboard.loop import load_controller_model
from onboard.objective import Objective
from onboard.warmup import warm_up
from robot_contract.errors import RoachError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onboard.deploy.check")
    parser.add_argument("--model", required=True)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        model = load_controller_model(args.model, cfg)
    except RoachError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    a = cfg.adaptation
    adapter = Adapter(model, a.mode, M=a.M, inner_lr=a.inner_lr)
    objective = Objective(model, cfg.planner, cfg.task)
    warm_up(model, adapter, objective, cfg)
    state = np.zeros(24)
    state[10] = 1.0  # cos of yaw: a valid heading
    objective.track(state)
    print(f"checked: {args.model} loads, adapts and plans here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
