"""Start-up work of the controller: run every step once before the robot moves.

The planner's buffers are touched the first time they are written, and BLAS starts its
threads on its first product; done here, the first control tick costs what every tick
costs instead of tripping the board's command timeout.
"""

from __future__ import annotations

import numpy as np

from onboard.adaptation import Adapter
from onboard.config import ControllerConfig
from onboard.model import LoadedModel
from onboard.objective import Objective
from onboard.planner import make_planner


def warm_up(
    model: LoadedModel, adapter: Adapter, objective: Objective, cfg: ControllerConfig
) -> None:
    """Runs an adaptation step and two plans before the robot moves, so the first tick
    costs what every tick costs. Uses a spare adapter and planner and leaves the objective
    as it was."""
    rng = np.random.default_rng(0)
    m = adapter.M
    states = np.zeros((m + 1, 24))
    states[:, 2:] = model.input_mean[:22] + 1e-3 * rng.standard_normal((m + 1, 22))
    states[:, 10], states[:, 11] = 1.0, 0.0  # cos, sin of yaw: a valid heading
    actions = np.full((m, 2), 0.5 * (cfg.loop.action_low_rev_s + cfg.loop.action_high_rev_s))
    spare = Adapter(model, adapter.mode, M=m, inner_lr=adapter.inner_lr)
    spare.adapt(states, actions)
    planner = make_planner(cfg.planner, cfg.loop.pipelined)
    low, high = np.full(2, cfg.loop.action_low_rev_s), np.full(2, cfg.loop.action_high_rev_s)
    for _ in range(2):
        planner.plan(objective.rollout_cost(states[-1], spare.params), actions[0], low, high)
    objective.task = None
