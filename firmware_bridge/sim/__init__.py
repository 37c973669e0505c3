"""The simulated robot (MuJoCo) and its Gymnasium environment.

``SimRobot`` (robot.py) is the robot plus the motor board's firmware behaviour;
``conditions.py`` parses the condition strings; ``env.py`` is ``RoachEnv``, registered
with Gymnasium as ``Roach-v0`` when this package is imported (MuJoCo itself loads only
when a robot or an environment is made).
"""

from __future__ import annotations

from firmware_bridge.sim.conditions import (
    CONDITION_KEYS,
    TRAINING_TERRAINS,
    Condition,
    load_condition_file,
    parse_condition,
    sample_training_condition,
)

__all__ = [
    "CONDITION_KEYS",
    "TRAINING_TERRAINS",
    "Condition",
    "load_condition_file",
    "parse_condition",
    "sample_training_condition",
]


def _register() -> None:
    try:
        import gymnasium
    except ModuleNotFoundError:  # the simulator works without Gymnasium
        return
    if "Roach-v0" not in gymnasium.registry:
        gymnasium.register(
            id="Roach-v0",
            entry_point="firmware_bridge.sim.env:RoachEnv",
            max_episode_steps=110,
        )


_register()
