"""Lockstep control periods per second through SerialRobot, a pty and ``roach sim``.

Each period sends SET_LEG_VELOCITY and waits for the telemetry + pose it advances the
lockstep fake by (0.1 s of simulation): the round trip of everything between the
controller and the robot except the controller. ``run_link_bench`` returns the round
trips; ``roach bench link`` prints them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from firmware_bridge.fake.process import running_fake
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import LinkError


@dataclass(frozen=True)
class LinkBenchResult:
    round_trips_s: tuple[float, ...]
    """One per control period, sorted ascending."""

    @property
    def periods(self) -> int:
        return len(self.round_trips_s)

    @property
    def periods_per_s(self) -> float:
        return self.periods / sum(self.round_trips_s)

    @property
    def median_s(self) -> float:
        return self.round_trips_s[self.periods // 2]

    @property
    def max_s(self) -> float:
        return self.round_trips_s[-1]


def run_link_bench(steps: int = 300, answer_timeout_s: float = 5.0) -> LinkBenchResult:
    """``steps`` lockstep periods against a fresh ``roach sim --clock lockstep`` (its
    stderr passes through); LinkError if it does not answer within ``answer_timeout_s``."""
    latencies = []
    with (
        running_fake("--clock", "lockstep", stderr=None) as (_proc, path),
        SerialRobot(path) as robot,
    ):
        robot.start_telemetry(10)
        robot.start_motors()
        for _ in range(steps):
            t = time.monotonic()
            robot.set_leg_velocity(5.0, 5.0)
            if not robot.wait_for_sample(t, answer_timeout_s):
                raise LinkError(f"the lockstep fake did not answer within {answer_timeout_s:g} s")
            latencies.append(time.monotonic() - t)
    return LinkBenchResult(tuple(sorted(latencies)))


def report_lines(r: LinkBenchResult) -> list[str]:
    """The lines ``roach bench link`` prints."""
    return [
        f"link: lockstep set_leg_velocity -> telemetry + pose over a pty, {r.periods} periods",
        f"  {r.periods_per_s:,.0f} control periods/s ({r.periods_per_s * 0.1:.0f} x real time); "
        f"round trip median {r.median_s * 1e3:.2f} ms, "
        f"max {r.max_s * 1e3:.2f} ms (includes 0.1 s of simulation per period)",
    ]
