"""The last ``roach hil`` check: a short closed-loop run of the controller on the robot.

The controller ``roach run`` builds (default config, the shipped model, the ``straight``
task) runs ``ticks`` realtime ticks on the robot under test. On a stand the pose does
not move, so the bounds are about the loop, not the path: every tick read fresh
telemetry and pose and commanded a plan (no stop event of any kind). The step time (adapt + plan)
and the distance travelled are reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_bridge.hil import CheckResult, Figure
from firmware_bridge.robot import Robot
from onboard import safety
from onboard.blas import set_blas_threads
from onboard.config import ControllerConfig, with_overrides
from onboard.loop import build_controller, load_controller_model
from onboard.warmup import warm_up

CLOSED_LOOP_TICKS = 20


def closed_loop_check(
    robot: Robot, model_path: str | Path, ticks: int = CLOSED_LOOP_TICKS
) -> CheckResult:
    """Runs the controller ``ticks`` realtime ticks on ``robot``; motors stopped after."""
    cfg = with_overrides(ControllerConfig(), loop__steps=ticks, task__name="straight")
    model = load_controller_model(model_path, cfg)
    set_blas_threads(cfg.loop.blas_threads)
    ctl = build_controller(robot, model, cfg, lockstep=False)
    warm_up(model, ctl.adapter, ctl.objective, cfg)
    try:
        ctl.start(cfg.link.hello_timeout_s, cfg.link.telemetry_rate_hz)
        result = ctl.run(ticks)
    finally:
        ctl.shutdown()
    period_ms = 1e3 / cfg.loop.rate_hz
    planned = len(result.step_times_s)
    stops = sum(v for k, v in result.events.items() if k in safety.STOP_EVENTS)
    steps_ms = np.asarray(result.step_times_s) * 1e3
    p50, worst = (float(np.median(steps_ms)), float(steps_ms.max())) if planned else (0.0, 0.0)
    events = ", ".join(f"{k} {v}" for k, v in sorted(result.events.items())) or "none"
    progress = float(result.tracking.get("progress_m", 0.0))
    return CheckResult.of(
        "closed_loop",
        [
            Figure(
                "ticks that planned",
                f"{planned}/{result.ticks}",
                f"{ticks}/{ticks}",
                planned == ticks == result.ticks,
            ),
            Figure("stop commands", stops, f"= 0; events: {events}", stops == 0),
            Figure("step time p50", p50, f"reported, period {period_ms:g} ms", True, "ms"),
            Figure("step time max", worst, "reported", True, "ms"),
            Figure("progress along the path", progress, "reported (0 on a stand)", True, "m"),
            Figure("model", Path(model_path).name, "reported", True),
        ],
    )
