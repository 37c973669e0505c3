"""A sled dragged behind the robot on a tether.

The sled is a point on the ground. While the tether is slack nothing happens; once it is
taut the sled follows it and pulls back on the robot with its sliding friction plus its
weight's component down the slope. The sled has no inertia of its own.
"""

from __future__ import annotations

import numpy as np

TETHER_M = 0.15
SLED_FRICTION_SCALE = 0.7
"""A sled slides more easily than legs grip: its friction is this times the terrain's."""


class Sled:
    """Sled position ``xy`` (2,) m in the simulation frame."""

    def __init__(self) -> None:
        self.xy = np.zeros(2)

    def hitch(self, attach_xy: np.ndarray, heading_xy: np.ndarray) -> None:
        """Puts the sled straight behind the attachment point, tether just taut."""
        self.xy = attach_xy - TETHER_M * heading_xy

    def pull(
        self, attach_xy: np.ndarray, mass_kg: float, friction: float, gravity: np.ndarray
    ) -> np.ndarray:
        """Moves the sled after the attachment point (2,) m and returns the tether's force
        on the robot, (2,) N in the simulation frame (zero while slack)."""
        gap = attach_xy - self.xy
        dist = float(np.linalg.norm(gap))
        if dist < TETHER_M:
            return np.zeros(2)
        u = gap / dist  # from the sled towards the robot
        self.xy = attach_xy - TETHER_M * u
        drag = SLED_FRICTION_SCALE * friction * abs(gravity[2]) - float(np.dot(gravity[:2], u))
        return -u * max(0.0, mass_kg * drag)
