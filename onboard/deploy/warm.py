"""Compiles the controller's Numba kernels into ``NUMBA_CACHE_DIR`` (run on the robot at
activation by ``activate.py``): ``python -m onboard.deploy.warm --model M [--config C]``.

The same work ``roach run`` does before the robot moves (onboard/warmup.py) plus the
task's tracking, through the import path the service uses, so the service's first
control step loads compiled code from the cache instead of compiling.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from onboard.adaptation import Adapter
from onboard.config import load_config
from onboard.loop import load_controller_model
from onboard.objective import Objective
from onboard.warmup import warm_up
from robot_contract.errors import RoachError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onboard.deploy.warm")
    parser.add_argument("--model", required=True)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    # Group-writable: the service user (in the cache folder's group) must be able to
    # write there too, or Numba will not use the folder (docs/deploy.md).
    os.umask(0o002)
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
    cache = os.environ.get("NUMBA_CACHE_DIR")
    n = sum(1 for _ in Path(cache).rglob("*.nbi")) if cache else 0
    print(f"warmed: {n} kernel index files in {cache or 'no cache directory'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
