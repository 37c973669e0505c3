"""``roach demo``: the shipped models on the simulated robot, end to end.

For each controller (the GrBAL model with one adaptation step per tick, the steps kept
from tick to tick as ``roach run`` does by default, and the plain MB model without
adaptation) it starts the software fake robot (``roach sim --clock
lockstep``, MuJoCo behind a real pseudo-terminal), runs the onboard controller
(``roach run --lockstep``) against it through the serial protocol, and then reads
both MCAP logs back to compare how well each followed the path. Everything the robot
would run runs here, with no PyTorch. Writes the logs and a trajectory plot.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.fake.process import running_fake
from onboard.logging_mcap import read_log
from onboard.tasks import TASKS, path_points
from robot_contract.errors import ConfigError, LinkError
from robot_contract.state import CONTROL_PERIOD_S
from tools.argtypes import COUNT, SEED

HELP = "run the shipped model on the simulated robot, end to end"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Contender:
    name: str
    model: Path
    mode: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--condition",
        default="gain_left=0.5@3",
        help="what goes wrong (simulator condition string; default: the left motor loses "
        "half its torque 3 s in)",
    )
    parser.add_argument("--task", default="figure8", help=f"path: {', '.join(TASKS)}")
    parser.add_argument("--steps", type=COUNT, default=190, help="control ticks (default 190)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.5,
        help="path size (task scale_m; default 1.5: the figure-8 of 0.75 m loops, 9.4 m, "
        "is driven whole in the 190 ticks)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="simulator seed (default 0)")
    parser.add_argument("--models", default=str(REPO / "models"), help="folder of the models")
    parser.add_argument("--out", default="runs/demo", help="folder for logs and the plot")
    parser.add_argument("--no-plot", action="store_true", help="skip the trajectory plot")
    parser.add_argument(
        "--board",
        choices=("python", "c"),
        default="python",
        help="the fake robot's board logic: python, or c (the C firmware in the loop)",
    )


def run(args: argparse.Namespace) -> int:
    # The fake robot and the plot need the `sim` extra: say so before any episode runs.
    import matplotlib  # noqa: F401
    import mujoco  # noqa: F401

    if args.task not in TASKS:
        raise ConfigError(f"--task {args.task!r} unknown; valid: {', '.join(TASKS)}")
    if args.steps < 1:
        raise ConfigError(f"--steps {args.steps} out of range; valid: >= 1")
    if not 0.1 <= args.scale <= 10:
        raise ConfigError(f"--scale {args.scale:g} out of range; valid: 0.1..10")
    models = Path(args.models).resolve()
    contenders = [
        Contender("GrBAL", models / "grbal.onnx", "dyn-eval"),
        Contender("MB", models / "mb.onnx", "none"),
    ]
    for c in contenders:
        if not c.model.exists():
            raise ConfigError(f"model {c.model} missing; retrain with `make models`")
    # Checked here, before any process starts, so a typo is one line naming the key.
    from firmware_bridge.sim.conditions import parse_condition

    parse_condition(args.condition)
    out = Path(args.out).resolve()  # the subprocesses run in the repository folder
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {args.out}: cannot create the folder ({exc.strerror})") from None
    config = out / "demo.toml"
    config.write_text(f"[task]\nname = {args.task!r}\nscale_m = {args.scale!r}\n")
    print(
        f"demo: task {args.task!r} at scale {args.scale:g}, {args.steps} ticks at 10 Hz, "
        f"condition {args.condition!r} ({describe_condition(args.condition)}), "
        f"simulator seed {args.seed}, board {args.board}",
        flush=True,
    )
    rows = []
    for c in contenders:
        log = out / f"{c.name.lower()}.mcap"
        print(f"\n== {c.name}: {c.model} (adaptation: {c.mode})", flush=True)
        _episode(c, args, log, config)
        rows.append((c, log))
    print("\n== summary (from the logs)")
    table: list[list[str]] = []
    trajectories = {}
    for c, log in rows:
        run_log = read_log(log)
        track = [t["tracking"] for t in run_log.ticks if t.get("tracking")]
        steps = [
            t["timing"]["adapt_ms"] + t["timing"]["plan_ms"]
            for t in run_log.ticks
            if t.get("planner")
        ]
        dist = np.array([t["distance_m"] for t in track]) if track else np.zeros(1)
        progress = track[-1]["progress_m"] if track else 0.0
        events = sum(len(t.get("events") or []) for t in run_log.ticks)
        step_p50 = np.median(steps) if steps else float("nan")
        table.append([c.name, f"{dist.mean():.3f}", f"{dist.max():.3f}", f"{progress:.2f}",
                      f"{step_p50:.2f}", str(events)])  # fmt: skip
        trajectories[c.name] = np.array(
            [
                [t["pose"]["x"], t["pose"]["y"], t["pose"]["yaw"]]
                for t in run_log.ticks
                if t.get("pose")
            ]
        )
    print(format_table(SUMMARY_COLUMNS, table))
    if not args.no_plot:
        png = out / "trajectories.png"
        _plot(trajectories, args, png)
        print(f"plot: {png}")
    print(f"logs: {', '.join(str(log) for _, log in rows)} (open with Foxglove or `roach replay`)")
    return 0


SUMMARY_COLUMNS = (
    "controller", "mean dist (m)", "max dist (m)", "progress (m)", "step p50 (ms)", "events",
)  # fmt: skip

LEGS = {"L": "left", "R": "right", "F": "front", "M": "middle"}
WORDS = {
    "terrain": "on {v}",
    "friction": "friction x{v}",
    "softness": "ground softness {v}",
    "roughness_mm": "{v} mm rough ground",
    "payload_g": "{v} g payload",
    "payload_x_mm": "payload {v} mm forward",
    "payload_y_mm": "payload {v} mm to the left",
    "tow_g": "towing {v} g",
    "yaw_offset_deg": "tracker yaw off by {v} deg",
    "pos_offset_mm": "tracker off by {v} mm",
    "battery_v": "battery at {v} V",
}


def describe_condition(text: str) -> str:
    """A condition string in words: 'gain_left=0.5@3' -> 'left motor at 50% torque from 3 s'."""
    parts = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        value, _, at = value.partition("@")
        if key in ("gain_left", "gain_right"):
            words = f"{key[5:]} motor at {float(value):.0%} torque"
        elif key == "slope_deg":
            v = float(value)
            words = f"{'uphill' if v >= 0 else 'downhill'} {abs(v):g} deg"
        elif key == "missing_leg":
            legs = [" ".join(LEGS[c] for c in leg) for leg in value.split("+")]
            words = f"{' and '.join(legs)} leg{'s' if len(legs) > 1 else ''} missing"
        else:
            words = WORDS.get(key, f"{key} {{v}}").format(v=value)
        parts.append(words + (f" from {at} s" if at else ""))
    return ", ".join(parts) or "nominal conditions"


def condition_onset_s(text: str) -> float | None:
    """When the first part of the condition that switches on mid-run does (s), or None."""
    from firmware_bridge.sim.conditions import parse_condition

    return parse_condition(text).onset_s()


def format_table(header: Sequence[str], rows: list[list[str]]) -> str:
    """Columns two spaces apart, each as wide as its widest cell; text left, numbers right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))])

    return "\n".join([line(header), *(line(r) for r in rows)])


def _episode(c: Contender, args: argparse.Namespace, log: Path, config: Path) -> None:
    """One lockstep episode: the fake robot in a subprocess, `roach run` in another."""
    fake = ("--clock", "lockstep", "--condition", args.condition, "--seed", str(args.seed),
            "--board", args.board)  # fmt: skip
    with running_fake(*fake, cwd=str(REPO)) as (_sim, port):
        proc = subprocess.run(
            [sys.executable, "-m", "tools.cli", "run", "--port", port, "--model", str(c.model),
             "--mode", c.mode, "--config", str(config), "--steps", str(args.steps),
             "--log", str(log), "--quiet"],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            check=False,
        )  # fmt: skip
    if proc.returncode != 0:
        raise LinkError(f"roach run for {c.name} exited with code {proc.returncode}")


def _plot(trajectories: dict[str, np.ndarray], args: argparse.Namespace, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    first = next(iter(trajectories.values()), None)
    if first is not None and len(first):
        x0, y0, yaw0 = first[0]
        c, s = np.cos(yaw0), np.sin(yaw0)
        path = path_points(args.task, args.scale)
        world = np.stack(
            [x0 + c * path[:, 0] - s * path[:, 1], y0 + s * path[:, 0] + c * path[:, 1]], axis=1
        )
        ax.plot(world[:, 0], world[:, 1], "k--", lw=1, label=f"path ({args.task})")
    onset = condition_onset_s(args.condition)
    # Tick k reads the pose at the end of the (k+1)-th control period (lockstep).
    k_on = None if onset is None else max(0, round(onset / CONTROL_PERIOD_S) - 1)
    for i, (name, xy) in enumerate(trajectories.items()):
        if len(xy):
            ax.plot(xy[:, 0], xy[:, 1], lw=2, label=name, color=f"C{i}")
            if k_on is not None and k_on < len(xy):
                label = f"condition on ({onset:g} s)" if i == 0 else None
                ax.plot(*xy[k_on, :2], "o", ms=9, mfc="none", mew=2, color="r", label=label)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{args.task}: {describe_condition(args.condition)}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
