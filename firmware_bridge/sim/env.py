"""``RoachEnv``: the simulated robot as a Gymnasium environment at the 10 Hz control rate.

Action: left and right leg-velocity setpoints, leg rev/s, shape (2,) float32 within
[ACTION_LOW_REV_S, ACTION_HIGH_REV_S] (out-of-bounds actions are clipped).
Observation: the 24-number state of ``robot_contract.state`` (shape (24,) float64), built
by ``StateBuilder`` from the simulated telemetry and motion-capture pose, exactly as the
onboard computer builds it from the real robot's.
Reward: forward progress along the start heading over the step, m (true pose); the
controller plans with its own cost. Episodes are truncated after 110 steps (11 s) and end
early (terminated) if the robot flips over, which only combined extreme conditions do.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from firmware_bridge.sim.conditions import Condition, as_condition
from firmware_bridge.sim.robot import SimRobot
from firmware_bridge.state_builder import StateBuilder
from robot_contract.state import (
    ACTION_DIM,
    ACTION_HIGH_REV_S,
    ACTION_LOW_REV_S,
    CONTROL_PERIOD_S,
    STATE_DIM,
)

EPISODE_STEPS = 110


class RoachEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """The simulated robot under one condition (see conditions.py), 10 Hz.

    ``reset(seed=..., options={"condition": str | Condition})`` changes the condition for
    this and later episodes. ``robot`` is the underlying ``SimRobot`` (for true poses,
    plots and tests); ``info`` carries the true pose and the simulated time.
    """

    metadata = {"render_modes": []}  # noqa: RUF012  (gymnasium declares it per instance)

    def __init__(self, condition: Condition | str = "", episode_steps: int = EPISODE_STEPS) -> None:
        self.action_space = spaces.Box(
            low=np.full(ACTION_DIM, ACTION_LOW_REV_S, dtype=np.float32),
            high=np.full(ACTION_DIM, ACTION_HIGH_REV_S, dtype=np.float32),
            dtype=np.float32,
        )
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(STATE_DIM,), dtype=np.float64)
        self._condition = as_condition(condition)
        self._episode_steps = episode_steps
        self.robot = SimRobot(self._condition, seed=0)
        self._builder = StateBuilder()
        self._steps = 0
        self._heading = np.array([1.0, 0.0])
        self._last_xy = np.zeros(2)

    @property
    def condition(self) -> Condition:
        return self._condition

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "condition" in options:
            self._condition = as_condition(options["condition"])
        self.robot.reset(seed=int(self.np_random.integers(1 << 31)), condition=self._condition)
        self._builder.reset()
        self._steps = 0
        start = self.robot.true_pose()
        self._heading = np.array([math.cos(start.yaw), math.sin(start.yaw)])
        self._last_xy = np.array([start.x, start.y])
        return self._observe(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        left, right = np.clip(
            np.asarray(action, dtype=np.float64), ACTION_LOW_REV_S, ACTION_HIGH_REV_S
        )
        self.robot.set_leg_velocity(float(left), float(right))
        self.robot.step(CONTROL_PERIOD_S)
        self._steps += 1
        obs = self._observe()
        truth = self.robot.true_pose()
        xy = np.array([truth.x, truth.y])
        reward = float(np.dot(xy - self._last_xy, self._heading))
        self._last_xy = xy
        terminated = self.robot.flipped
        truncated = self._steps >= self._episode_steps and not terminated
        return obs, reward, terminated, truncated, self._info()

    def _observe(self) -> np.ndarray:
        return self._builder.build(self.robot.telemetry(), self.robot.pose())

    def _info(self) -> dict[str, Any]:
        return {"true_pose": self.robot.true_pose(), "time_s": self.robot.time_s}
