"""``roach collect --port DEV --out DIR``: sessions of onboard/collect.py into a folder.

Each session is one MCAP log ``DIR/collect-<label>-<date>-<time>.mcap`` (a run log:
docs/log-format.md) and one line in ``DIR/collect-index.json`` (label, log, driven
ticks, how it ended). The session runs until the label's minutes in the folder reach
``--minutes``, Ctrl-C, or a trip (arena, tip-over, battery, e-stop); rerunning appends.
Imports only what the ``onboard`` extra installs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from onboard.collect import Collector, CollectResult, CollectSettings
from onboard.config import describe, load_config, with_overrides
from onboard.logging_mcap import LOG_FORMAT_VERSION, TOPIC_RUN
from onboard.tick_record import TickRecord
from robot_contract.errors import ConfigError
from tools.cmd_run import open_log_and_robot
from tools.pose_option import pose_override, with_robot_file

INDEX = "collect-index.json"


def read_index(folder: Path) -> list[dict[str, Any]]:
    """The sessions collected in ``folder`` so far ([] if none); ConfigError if unreadable."""
    path = folder / INDEX
    if not path.exists():
        return []
    try:
        sessions = json.loads(path.read_text(encoding="utf-8"))["sessions"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a collection index ({exc})") from None
    return list(sessions)


def minutes_of(sessions: list[dict[str, Any]], label: str, period_s: float) -> float:
    return sum(int(s["driven_ticks"]) for s in sessions if s["label"] == label) * period_s / 60


def _append_index(folder: Path, entry: dict[str, Any]) -> None:
    sessions = [*read_index(folder), entry]
    tmp = folder / f"{INDEX}.tmp"
    tmp.write_text(json.dumps({"sessions": sessions}, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / INDEX)


class Progress:
    """A progress bar in minutes for the label, redrawn at most once a second (a terminal
    only, unless ``force``)."""

    def __init__(self, label: str, done_min: float, target_min: float, period_s: float,
                 enabled: bool) -> None:  # fmt: skip
        self.label, self.done, self.target, self.period_s = label, done_min, target_min, period_s
        self.enabled = enabled
        self._last = 0.0
        self._driven = 0

    def __call__(self, rec: TickRecord) -> None:
        self._driven += rec.sent is not None
        now = time.monotonic()
        if self.enabled and now - self._last >= 1.0:
            self._last = now
            print("\r" + self.line(), end="", file=sys.stderr, flush=True)

    def line(self) -> str:
        m = self.done + self._driven * self.period_s / 60
        frac = min(1.0, m / self.target)
        bar = "#" * round(30 * frac) + "-" * (30 - round(30 * frac))
        return f"collect {self.label}: {m:6.2f} / {self.target:g} min [{bar}]"


def run_on_robot(args: argparse.Namespace) -> int:
    try:
        settings = CollectSettings(
            label=args.label,
            minutes=args.minutes,
            arena_radius_m=args.arena_radius_m,
            arena_margin_m=args.arena_margin_m,
            arena_centre=args.arena_centre,
            max_tilt_deg=args.max_tilt_deg,
            battery_floor_v=args.battery_floor_v,
            seed=args.seed,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cfg = with_overrides(load_config(args.config), link__port=args.port,
                         pose__source=pose_override(args))  # fmt: skip
    cfg, robot_file = with_robot_file(cfg, args.robot)
    period_s = 1.0 / cfg.loop.rate_hz
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {folder}: cannot make the folder ({exc.strerror})") from None
    done = minutes_of(read_index(folder), settings.label, period_s)
    left_ticks = math.ceil((settings.minutes - done) * 60 / period_s)
    if left_ticks <= 0:
        print(f"roach collect: {settings.label} has {done:.2f} min in {folder} already "
              f"(target {settings.minutes:g}); nothing to do")  # fmt: skip
        return 0
    log_path = folder / time.strftime(f"collect-{settings.label}-%Y%m%d-%H%M%S.mcap")
    n = 1
    while log_path.exists():
        n += 1
        log_path = log_path.with_name(f"{log_path.stem.split('.')[0]}.{n}.mcap")
    log, robot, lockstep = open_log_and_robot(log_path, cfg, args)
    col = Collector(robot, cfg.loop, settings, log=log, lockstep=lockstep,
                    calibration=robot_file.sensors)  # fmt: skip
    progress = Progress(settings.label, done, settings.minutes, period_s,
                        enabled=not args.no_progress and sys.stderr.isatty())  # fmt: skip
    col.observers.append(progress)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        col.request_stop(signal.Signals(signum).name)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    result: CollectResult | None = None
    try:
        hello = col.start(cfg.link.hello_timeout_s, cfg.link.telemetry_rate_hz)
        log.write(TOPIC_RUN, {
            "log_format_version": LOG_FORMAT_VERSION,
            "kind": "collect",
            "label": settings.label,
            "collect": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
            "config": describe(cfg),
            "robot_file": robot_file.source,
            "hello": hello,
            "lockstep": lockstep,
            "nominal_action": col.nominal,
        })  # fmt: skip
        result = col.run(left_ticks)
    finally:
        col.shutdown()
        robot.close()
        log.close(col.result.as_dict())
        for s, h in old.items():
            signal.signal(s, h)
        _append_index(folder, {"log": log_path.name, "label": settings.label,
                               **col.result.as_dict()})  # fmt: skip
    if progress.enabled:
        print(file=sys.stderr)
    r = result
    events = ", ".join(f"{k} {v}" for k, v in sorted(r.events.items())) or "none"
    print(
        f"roach collect: {r.ticks} ticks, {r.transitions} transitions, "
        f"{progress.line().split(': ', 1)[1]}"
        + (f", stopped by {r.stopped_by}" if r.stopped_by else "")
        + f"\nevents: {events}\nlog: {log_path}"
    )
    return 0
