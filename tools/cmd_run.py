"""``roach run``: the onboard controller on a robot (or the fake behind its pty).

Everything that can be wrong with the inputs (config, model file, port) is checked
before the robot moves; each is one line and exit code 2. Any RoachError, also one
raised later (a link lost during the start sequence, a refused START_MOTORS), is one
line and exit code 2 as well. A link lost during the episode is not an error: the
ticks see stale data and command stops. SIGINT/SIGTERM stop the motors, close the log
and exit within one control period (exit code 128 + signal number). See
docs/controller.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from firmware_bridge.link_health import link_line
from firmware_bridge.robot import Robot
from firmware_bridge.serial_robot import SerialRobot
from onboard.adaptation import MODES
from onboard.blas import set_blas_threads
from onboard.board_clock import CLOCKS, pick_clock
from onboard.config import ControllerConfig, describe, load_config, with_overrides
from onboard.logging_mcap import LOG_FORMAT_VERSION, TOPIC_RUN, TickLogWriter
from onboard.loop import Controller, build_controller, load_controller_model
from onboard.model import LoadedModel
from onboard.replay_check import replay_record
from onboard.resources import check_sizes, check_step_time, time_steps
from onboard.run_observers import RunObservers
from onboard.tasks import TASKS
from onboard.tick_record import LoopResult
from onboard.warmup import warm_up
from robot_contract.errors import ConfigError, LinkError, RoachError
from tools.argtypes import COUNT
from tools.pose_option import (
    add_pose_argument,
    add_robot_argument,
    open_serial_robot,
    pose_override,
    with_robot_file,
)

HELP = "the onboard controller: adapt, plan and drive the robot"


class PortNotFoundError(LinkError):
    """The serial port named on the command line or in the config cannot be opened."""

    exit_code = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", help="serial device or the path `roach sim` prints")
    parser.add_argument("--model", required=True, help="model file, e.g. models/grbal.onnx")
    parser.add_argument("--config", help="TOML config (default: built-in defaults)")
    parser.add_argument("--task", help=f"path to follow: {', '.join(TASKS)}")
    parser.add_argument("--steps", type=COUNT, help="control ticks (default 110)")
    parser.add_argument("--mode", help=f"adaptation: {', '.join(MODES)}")
    parser.add_argument("--log", help="MCAP log path (default runs/run-<time>.mcap)")
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="auto",
        help="auto (default): the clock the board's hello names; realtime or lockstep: "
        "require that clock (exit 2 if the board runs the other)",
    )
    parser.add_argument("--lockstep", action="store_true", help="same as --clock lockstep")
    add_pose_argument(parser)
    add_robot_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no status line on the terminal")
    parser.add_argument(
        "--live",
        nargs="?",
        type=int,
        const=8765,
        metavar="PORT",
        help="serve the run to Foxglove on ws://127.0.0.1:PORT (default 8765; the `live` extra)",
    )
    parser.add_argument("--live-host", default="127.0.0.1", help="address --live binds to")


def run(args: argparse.Namespace) -> int:
    cfg = with_overrides(
        load_config(args.config),
        loop__steps=args.steps,
        task__name=args.task,
        adaptation__mode=args.mode,
        link__port=args.port,
        pose__source=pose_override(args),
    )
    cfg, robot_file = with_robot_file(cfg, args.robot)
    model = load_controller_model(args.model, cfg)
    check_sizes(cfg, model)
    if model.checksum is None:
        msg = "carries no checksum (exported before checksums): integrity not verified"
        print(f"roach run: warning: {args.model} {msg}; re-export it", file=sys.stderr)
    set_blas_threads(cfg.loop.blas_threads)
    log_path = Path(args.log or time.strftime("runs/run-%Y%m%d-%H%M%S.mcap"))
    log, robot, lockstep = open_log_and_robot(log_path, cfg, args)
    ctl = build_controller(
        robot, model, cfg, log=log, lockstep=lockstep, calibration=robot_file.sensors
    )
    watchers = attach_observers(ctl, args, robot, log)
    signals: dict[str, int] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signals.setdefault("signum", signum)
        ctl.request_stop(signal.Signals(signum).name)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    result: LoopResult | None = None
    try:
        # Run every step once before the robot moves: the first tick costs what every tick
        # costs instead of tripping the board's command timeout.
        warm_up(model, ctl.adapter, ctl.objective, cfg)
        if not lockstep:  # the step must fit the wall-clock period (onboard/resources.py)
            n = cfg.resources.warmup_steps
            check_step_time(time_steps(ctl.adapter, ctl.objective, ctl.planner, cfg, n), cfg)
        hello = ctl.start(cfg.link.hello_timeout_s, cfg.link.telemetry_rate_hz)
        log.write(TOPIC_RUN, run_record(cfg, model, hello, ctl, lockstep))
        watchers.started()
        result = ctl.run(cfg.loop.steps)
    finally:
        ctl.shutdown()
        watchers.close()
        robot.close()
        log.close(ctl.result.as_dict() if result is not None or log.failed else None)
        for s, h in old.items():
            signal.signal(s, h)
    print(report(result, cfg, lockstep, log_path))
    if signals:
        # Stopped by a signal: motors are off and the log is closed, and the process must
        # be gone within one control period, so leave without the interpreter's teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signals["signum"])
    return 0


def open_log_and_robot(
    log_path: Path, cfg: ControllerConfig, args: argparse.Namespace
) -> tuple[TickLogWriter, SerialRobot, bool]:
    """The log first (a path that cannot be written is exit 2 before the robot is
    touched), then the robot and its clock (``--lockstep``/``--clock``); if the robot
    cannot be reached, the empty log is removed again."""
    try:
        log = TickLogWriter(log_path, sync_every_s=cfg.loop.log_sync_s)
    except OSError as exc:
        raise ConfigError(f"cannot write the log {log_path}: {exc.strerror or exc}") from None
    try:
        robot = open_robot(cfg)
        lockstep = clock_of_board(robot, cfg, "lockstep" if args.lockstep else args.clock)
    except BaseException:
        log.close(None)
        log_path.unlink(missing_ok=True)
        raise
    return log, robot, lockstep


def open_robot(cfg: ControllerConfig) -> SerialRobot:
    """Opens the serial link and the pose source (``[pose]``, ``--pose``); a missing or
    unopenable port, or a pose source that cannot be opened, is exit code 2."""
    port = cfg.link.port
    if not port:
        raise ConfigError("no serial port: give --port DEVICE or set [link] port in the config")
    if "://" not in port and not Path(port).exists():
        raise PortNotFoundError(f"serial port {port!r} does not exist")
    try:  # a pose source that cannot open (port in use, package missing) is exit 2 too
        return open_serial_robot(port, cfg.link.baud, None, cfg.pose)
    except LinkError as exc:
        raise PortNotFoundError(str(exc)) from None


def attach_observers(
    ctl: Controller, args: argparse.Namespace, robot: Robot, log: TickLogWriter
) -> RunObservers:
    """The service watchdog, the status line and (``--live``) the live view; closes the
    robot and the log if the live view cannot start."""
    try:
        return RunObservers(
            ctl, log=log, quiet=args.quiet, live_port=args.live, live_host=args.live_host
        )
    except (RoachError, ImportError):
        robot.close()
        log.close()
        raise


def clock_of_board(robot: Robot, cfg: ControllerConfig, asked: str) -> bool:
    """Lockstep or not, from the board's hello (onboard.board_clock); closes the robot
    and raises (one line, exit 2) if it does not answer or runs another clock."""
    try:
        hello = robot.hello(timeout_s=cfg.link.hello_timeout_s)
        return pick_clock(hello, asked, cfg.link.port or "the port")
    except RoachError:
        robot.close()
        raise


def run_record(
    cfg: ControllerConfig, model: LoadedModel, hello: dict, ctl: Controller, lockstep: bool
) -> dict[str, Any]:
    """The log's /roach/run message (docs/log-format.md)."""
    m = model.meta
    return {
        "log_format_version": LOG_FORMAT_VERSION,
        "config": describe(cfg),
        "model": {
            "path": str(model.path),
            "algorithm": m.algorithm,
            "hidden": list(m.hidden),
            "M": m.M,
            "inner_lr": m.inner_lr,
            "code_version": m.code_version,
            "seed": m.seed,
        },
        "adaptation": {
            "mode": ctl.adapter.mode,
            "M": ctl.adapter.M,
            "inner_lr": ctl.adapter.inner_lr,
            "change_ratio": ctl.adapter.change_ratio,
            "change_rows": ctl.adapter.change_rows,
            "change_gain": ctl.adapter.change_gain,
        },
        "hello": hello,
        "lockstep": lockstep,
        "nominal_action": ctl.nominal,
        "replay": replay_record(model.path, ctl),
    }


def report(result: LoopResult | None, cfg: ControllerConfig, lockstep: bool, log_path: Path) -> str:
    """The end-of-run summary printed on stdout."""
    if result is None:
        return f"roach run: no ticks ran; log {log_path}"
    t = result.timing_summary()
    lines = [
        f"roach run: {result.ticks} ticks, task {cfg.task.name}, mode {cfg.adaptation.mode}, "
        f"{'lockstep' if lockstep else 'realtime'} clock"
        + (f", stopped by {result.stopped_by}" if result.stopped_by else ""),
    ]
    if "step_p50_ms" in t:
        lines.append(
            f"step time (adapt + plan), {len(result.step_times_s)} ticks: "
            f"p50 {t['step_p50_ms']:.2f} ms  p99 {t['step_p99_ms']:.2f} ms  "
            f"max {t['step_max_ms']:.2f} ms"
        )
    if "tick_p50_ms" in t:
        lines.append(
            f"whole tick: p50 {t['tick_p50_ms']:.2f} ms  p99 {t['tick_p99_ms']:.2f} ms  "
            f"max {t['tick_max_ms']:.2f} ms  (period {1e3 / cfg.loop.rate_hz:.0f} ms)"
        )
    events = ", ".join(f"{k} {v}" for k, v in sorted(result.events.items())) or "none"
    lines.append(f"overruns: {result.overruns}   events: {events}")
    if result.link:
        lines.append(link_line(result.link))
    tr = result.tracking
    if tr.get("n"):
        lines.append(
            f"tracking ({tr['n']} states): mean distance {tr['mean_distance_m']:.3f} m, "
            f"max {tr['max_distance_m']:.3f} m, progress {tr['progress_m']:.2f} m "
            f"({100 * tr['progress_fraction']:.0f} % of the path), "
            f"mean heading error {tr['mean_heading_error_rad']:.3f} rad"
        )
    lines.append(f"log: {log_path}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: roach run ...")
