"""The soak in CI: a short `roach soak` (20 simulated seconds, the condition changing every 5 s)
with a small planner; the one-hour figures are in docs/reliability.md (`make soak`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from offboard_training.soak import SOAK_CONDITIONS, run_soak, soak_config
from onboard.config import ControllerConfig
from onboard.logging_mcap import read_log
from onboard.planner import PlannerConfig

REPO = Path(__file__).resolve().parents[2]


def test_short_soak_logs_every_tick_without_stalls(tmp_path: Path) -> None:
    """20 simulated seconds in lockstep, the condition switching every 5 s: every tick is in
    the log, no stall goes unrecovered, the link loses nothing and the robot drove."""
    cfg = dataclasses.replace(
        soak_config(ControllerConfig()), planner=PlannerConfig(n_candidates=64, horizon=3)
    )
    log_path = tmp_path / "soak.mcap"
    res = run_soak(
        20 / 3600, str(REPO / "models" / "grbal.onnx"), log_path, cfg, seed=3, minute_s=5.0
    )
    assert res.ticks == 200 and res.ticks_logged == 200
    assert res.unrecovered_stalls == 0 and res.stall_ticks == 0
    assert res.link["corrupt"] == 0 and res.link["dropped"] == 0
    assert len(res.rss_mb) == 4 and all(m > 0 for m in res.rss_mb)
    log = read_log(log_path)
    assert log.finished and log.summary is not None and log.summary["ticks"] == 200
    planned = sum(t["command"]["kind"] == "plan" for t in log.ticks)
    assert planned > 180, res.events
    assert len(SOAK_CONDITIONS) >= 10
    assert res.lines()[1] == "ticks logged: 200 of 200"
