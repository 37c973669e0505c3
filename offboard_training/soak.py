"""The soak: the onboard controller for hours of simulated time, conditions changing every
simulated minute, watched for leaks, lost ticks and stalls (``roach soak``).

One controller, one log and one lockstep fake robot on a real pty (the fake of
offboard_training/closed_loop.py, served by a thread of this process) for the whole run:
nothing is restarted. Every simulated minute the simulator switches to the next condition
of ``SOAK_CONDITIONS`` (terrains, payloads, motor gains, a missing leg, a slope, ice) and
the task's path is placed again at the robot's pose, so the robot keeps following a path.
The process's resident memory is read every simulated minute; the growth from the end of
the warm-up (the first ``WARMUP_MINUTES``) to the end is the leak figure. A stall is a tick
without a fresh sample; one is unrecovered when ``UNRECOVERED_TICKS`` ticks in a row have
none. No PyTorch: the ``sim`` and ``onboard`` extras only.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOAK_CONDITIONS: tuple[str, ...] = (
    "terrain=carpet",
    "terrain=styrofoam,payload_g=10",
    "terrain=turf,gain_left=0.6",
    "terrain=gravel",
    "terrain=carpet,missing_leg=RF",
    "terrain=carpet,slope_deg=10",
    "terrain=ice",
    "terrain=turf,payload_g=20,payload_x_mm=15",
    "terrain=carpet,gain_right=1.4,yaw_offset_deg=5",
    "terrain=styrofoam,tow_g=15",
)
"""One per simulated minute, in turn."""
WARMUP_MINUTES = 2
UNRECOVERED_TICKS = 10
"""A stall this many ticks long (1 s at 10 Hz) counts as unrecovered."""
STALE_KINDS = ("stale_telemetry", "stale_pose", "no_telemetry", "no_pose")


@dataclass
class SoakResult:
    """What the soak measured."""

    hours: float
    ticks: int = 0
    ticks_logged: int = 0
    wall_s: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    """Resident memory at the end of each simulated minute, MB."""
    stall_ticks: int = 0
    longest_stall_ticks: int = 0
    unrecovered_stalls: int = 0
    events: dict[str, int] = field(default_factory=dict)
    link: dict[str, Any] = field(default_factory=dict)
    step_p99_ms: float = float("nan")

    @property
    def rss_growth_mb(self) -> float:
        """RSS at the end minus RSS after the warm-up minutes, MB."""
        if len(self.rss_mb) <= WARMUP_MINUTES:
            return float("nan")
        return self.rss_mb[-1] - self.rss_mb[WARMUP_MINUTES - 1]

    def lines(self) -> list[str]:
        events = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())) or "none"
        return [
            f"roach soak: {self.hours:g} h simulated ({self.ticks} ticks) in {self.wall_s:.0f} s",
            f"ticks logged: {self.ticks_logged} of {self.ticks}",
            f"resident memory: {self.rss_mb[0] if self.rss_mb else float('nan'):.1f} MB after "
            f"minute 1, growth after warm-up {self.rss_growth_mb:+.2f} MB "
            f"(max {max(self.rss_mb, default=float('nan')):.1f} MB)",
            f"stalls: {self.stall_ticks} ticks, longest {self.longest_stall_ticks}, "
            f"unrecovered {self.unrecovered_stalls}",
            f"step p99 {self.step_p99_ms:.2f} ms   events: {events}",
            "link: " + ", ".join(f"{k} {v}" for k, v in self.link.items()),
        ]


def rss_mb() -> float:
    """This process's resident set size, MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class _Scheduled:
    """The simulated robot, switching to the next soak condition every simulated minute
    (inside the fake's thread, between physics steps)."""

    def __init__(self, sim: Any, minute_s: float) -> None:
        self._sim, self._minute_s, self._applied = sim, minute_s, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)

    def step(self, duration_s: float) -> None:
        minute = int(self._sim.time_s // self._minute_s)
        if minute != self._applied:
            self._applied = minute
            self._sim.set_condition(SOAK_CONDITIONS[minute % len(SOAK_CONDITIONS)])
        self._sim.step(duration_s)


def run_soak(
    hours: float,
    model_path: str,
    log_path: Path,
    config: Any = None,
    seed: int = 0,
    minute_s: float = 60.0,
) -> SoakResult:
    """Runs the soak; ``config`` an onboard.config.ControllerConfig (default: the defaults).
    ``minute_s``: simulated seconds between changes of condition (and memory readings)."""
    import io
    import threading

    import numpy as np

    from firmware_bridge.fake.firmware import FakeFirmware
    from firmware_bridge.fake.server import PtyServer
    from firmware_bridge.serial_robot import SerialRobot
    from firmware_bridge.sim.robot import SimRobot
    from onboard.config import ControllerConfig
    from onboard.logging_mcap import TickLogWriter, read_log
    from onboard.loop import build_controller, load_controller_model

    cfg = config or ControllerConfig()
    period_s = 1.0 / cfg.loop.rate_hz
    minute_ticks = round(minute_s / period_s)
    steps = round(hours * 3600.0 / period_s)
    out = SoakResult(hours)
    model = load_controller_model(model_path, cfg)
    sim = _Scheduled(SimRobot(SOAK_CONDITIONS[0], seed=seed), minute_s)
    server = PtyServer(
        FakeFirmware(sim, lockstep=True), seed=seed, out=io.StringIO(), log=io.StringIO()
    )
    path = server.open_pty()
    thread = threading.Thread(target=server.run, name="fake-robot", daemon=True)
    thread.start()
    t_wall = time.monotonic()
    try:
        robot = SerialRobot(path)
        log = TickLogWriter(log_path, sync_every_s=cfg.loop.log_sync_s)
        ctl = build_controller(robot, model, cfg, log=log, lockstep=True)
        try:
            ctl.start(cfg.link.hello_timeout_s, cfg.link.telemetry_rate_hz)
            ctl.clock.begin()
            ctl.link.start()
            streak = 0
            for k in range(steps):
                if k % minute_ticks == 0 and k:
                    ctl.objective.task = None  # the path again from where the robot is
                    out.rss_mb.append(rss_mb())
                if not ctl.clock.wait_tick(robot, lambda: False):
                    break
                before = sum(ctl.result.events[e] for e in STALE_KINDS)
                ctl.tick(k)
                ctl.clock.end_tick()
                stale = sum(ctl.result.events[e] for e in STALE_KINDS) > before
                streak = streak + 1 if stale else 0
                out.stall_ticks += stale
                out.longest_stall_ticks = max(out.longest_stall_ticks, streak)
                out.unrecovered_stalls += streak == UNRECOVERED_TICKS
            out.rss_mb.append(rss_mb())
        finally:
            ctl.shutdown()
            ctl.link.drain()
            ctl.result.link = ctl.link.summary()
            log.close(ctl.result.as_dict())
            robot.close()
    finally:
        server.stop()
        thread.join(timeout=5.0)
    out.wall_s = time.monotonic() - t_wall
    out.ticks = ctl.result.ticks
    out.events = dict(ctl.result.events)
    out.link = ctl.result.link
    times = np.asarray(ctl.result.step_times_s) * 1e3
    out.step_p99_ms = float(np.percentile(times, 99)) if times.size else float("nan")
    out.ticks_logged = len(read_log(log_path).ticks)
    return out


def soak_config(base: Any) -> Any:
    """The soak's controller config: ``base`` with a position bound for an hour's walk."""
    from onboard.plausibility import PlausibilityConfig

    return dataclasses.replace(
        base, plausibility=dataclasses.replace(base.plausibility or PlausibilityConfig(),
                                                max_position_m=1e5)
    )  # fmt: skip
