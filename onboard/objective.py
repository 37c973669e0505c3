"""The controller's objective: the dynamics model and the task, bound for the planner.

``Objective.rollout_cost`` gives the planner its ``rollout_cost`` (candidate action
sequences [N, H, 2] -> costs [N]) from the current state and model parameters; the task's
path is placed at the first state the loop measures.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from onboard.model import LoadedModel
from onboard.planner import PlannerConfig, RolloutCost
from onboard.rollout import Rollout
from onboard.tasks import Task, TaskConfig, TrackPoint, make_task


class Objective:
    """The model and the task bound for the planner; the task is placed at the first state.

    Args:
        model: the dynamics model; rollouts use the parameters given per tick.
        planner_cfg: sizes the rollout buffers (N candidates, horizon H).
        task_cfg: the path to follow and its cost (onboard.tasks).
    """

    def __init__(
        self, model: LoadedModel, planner_cfg: PlannerConfig, task_cfg: TaskConfig
    ) -> None:
        self.rollout = Rollout(model, planner_cfg.n_candidates, planner_cfg.horizon)
        self.task_cfg = task_cfg
        self.task: Task | None = None

    def track(self, state: np.ndarray) -> TrackPoint:
        """Projects the measured state [24] onto the path (placing the path on first call)."""
        if self.task is None:
            self.task = make_task(self.task_cfg, state)
        return self.task.track(state)

    def rollout_cost(self, state: np.ndarray, params: np.ndarray) -> RolloutCost:
        """The planner's cost of action sequences from ``state`` [24] under ``params`` [P]."""
        if self.task is None:
            self.task = make_task(self.task_cfg, state)
        return self.rollout.bind(params, state, self.task.cost)

    def metrics(self) -> dict[str, Any]:
        return {} if self.task is None else asdict(self.task.metrics())
