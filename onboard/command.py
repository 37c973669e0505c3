"""When a planned command goes out: pipelined (as published) or immediate.

Pipelined: the command planned at tick k is sent at the very start of tick k+1, before
anything else is computed, so it applies over exactly the period the model predicted
it for whatever the compute time took; the plan of tick k+1 then fixes every
candidate's first step to it (it is the command in flight) and keeps its second step
for tick k+2. Immediate: the plan's first step is sent as soon as planning ends, so it
applies from the state's time plus the compute time. docs/controller.md measures the
trade-off.

The timing is the loop's choice (``[loop] command_timing``); the planner is built to
match it (``Planner(fix_first_action=...)``).
"""

from __future__ import annotations

import numpy as np

COMMAND_TIMINGS: tuple[str, ...] = ("pipelined", "immediate")


class CommandTiming:
    """The command in flight and, pipelined, the one planned for the next tick.

    Args:
        timing: ``pipelined`` or ``immediate``.
        nominal: [2] rev/s, the command sent at start and the one to fall back to.
    """

    def __init__(self, timing: str, nominal: np.ndarray) -> None:
        if timing not in COMMAND_TIMINGS:
            raise ValueError(
                f"command timing {timing!r} is not valid; valid: {', '.join(COMMAND_TIMINGS)}"
            )
        self.pipelined = timing == "pipelined"
        self.nominal = np.asarray(nominal, np.float64).copy()
        self.in_flight = self.nominal.copy()
        """[2] the last command sent (what the robot is executing now)."""
        self._next = self.nominal.copy()

    def at_tick_start(self) -> np.ndarray | None:
        """The command to send before planning (pipelined: last tick's plan), or None."""
        return self._next.copy() if self.pipelined else None

    def after_plan(self, action: np.ndarray) -> np.ndarray | None:
        """The command to send once the plan is done (immediate: ``action``), or None
        (pipelined: ``action`` is kept for the next tick's start)."""
        if self.pipelined:
            self._next[:] = action
            return None
        return action

    def sent(self, action: np.ndarray) -> None:
        """``action`` [2] went out: it is the command in flight."""
        self.in_flight[:] = action

    def stopped(self) -> None:
        """The motors were stopped: restart from the nominal command."""
        self.in_flight[:] = self.nominal
        self._next[:] = self.nominal
