"""A minimal MPC policy for on-policy data collection (data aggregation iterations).

Random shooting with an exported model through onnxruntime: N candidate sequences of
H actions uniform in the bounds, rolled out by summing predicted deltas
(``s_{t+1} = s_t + delta``), scored by a line-following cost, first action executed,
replanned every step. The task of an episode is a straight line through the start
position at a random heading. It does not adapt the model: it exists to put the data
where the controller drives, not to be the robot's controller (that is onboard/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from offboard_training.dataset import one_line
from robot_contract.errors import ModelFileError
from robot_contract.state import (
    ACTION_DIM,
    ACTION_HIGH_REV_S,
    ACTION_LOW_REV_S,
    MODEL_INPUT_STATE_SLICE,
    STATE_DIM,
)

DIST_WEIGHT = 40.0
"""Cost per metre of distance from the line (the published 40/10/5 weighting)."""
BACKWARD_WEIGHT = 10.0
"""Cost per metre of backward progress along the line."""
HEADING_WEIGHT = 5.0
"""Cost per unit of (1 - cos heading error)."""
_INPUT_DIM = len(range(STATE_DIM)[MODEL_INPUT_STATE_SLICE]) + ACTION_DIM
"""Model input width: ``state[2:]`` then the action (24)."""


class MpcPolicy:
    """``act(states, actions)`` -> the next action [2] given the episode so far."""

    def __init__(self, model_path: Path, candidates: int = 500, horizon: int = 5) -> None:
        import onnxruntime as ort

        if not Path(model_path).is_file():
            raise ModelFileError(f"{model_path}: no such model file for --policy mpc")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(
                str(model_path), opts, providers=["CPUExecutionProvider"]
            )
            # A probe batch: the contract's names and shapes, checked once here, not per step.
            (probe,) = self._sess.run(["delta"], {"x": np.zeros((2, _INPUT_DIM), np.float32)})
        except Exception as exc:  # onnxruntime raises its own types, with multi-line text
            raise ModelFileError(
                f"{model_path}: onnxruntime cannot run it as a dynamics model ({one_line(exc)})"
            ) from None
        if probe.shape != (2, STATE_DIM):
            raise ModelFileError(
                f"{model_path}: output delta has shape {list(probe.shape)} for 2 inputs, "
                f"expected [2, {STATE_DIM}]"
            )
        self.candidates, self.horizon = candidates, horizon
        self._rng = np.random.default_rng(0)
        self._origin = np.zeros(2)
        self._heading = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._heading = float(rng.uniform(-np.pi, np.pi))
        self._origin = np.zeros(2)

    def act(self, states: list[np.ndarray], actions: list[np.ndarray]) -> np.ndarray:
        s0 = states[-1]
        if not actions:
            self._origin = s0[:2].copy()
        n, h = self.candidates, self.horizon
        seq = self._rng.uniform(ACTION_LOW_REV_S, ACTION_HIGH_REV_S, (n, h, ACTION_DIM))
        s = np.repeat(s0[None, :], n, axis=0)
        direction = np.array([np.cos(self._heading), np.sin(self._heading)])
        normal = np.array([-direction[1], direction[0]])
        cost = np.zeros(n)
        for t in range(h):
            x = np.concatenate([s[:, MODEL_INPUT_STATE_SLICE], seq[:, t]], axis=1)
            (delta,) = self._sess.run(["delta"], {"x": x.astype(np.float32)})
            s_next = s + delta
            rel = s_next[:, :2] - self._origin
            progress = (s_next[:, :2] - s[:, :2]) @ direction
            yaw = np.arctan2(s_next[:, 11], s_next[:, 10])
            cost += DIST_WEIGHT * np.abs(rel @ normal)
            cost += BACKWARD_WEIGHT * -progress
            cost += HEADING_WEIGHT * (1.0 - np.cos(yaw - self._heading))
            s = s_next
        return seq[int(np.argmin(cost)), 0]
