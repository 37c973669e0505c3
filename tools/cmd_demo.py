"""``roach demo``: the shipped models on the simulated robot, end to end.

For each controller (GrBAL with its one adaptation step per tick, and the plain MB
model without adaptation) it starts the software fake robot (``roach sim --clock
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.fake.process import running_fake
from onboard.logging_mcap import read_log
from onboard.tasks import TASKS, path_points
from robot_contract.errors import ConfigError, LinkError
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
    parser.add_argument("--steps", type=COUNT, default=110, help="control ticks (default 110)")
    parser.add_argument("--seed", type=SEED, default=0, help="simulator seed (default 0)")
    parser.add_argument("--models", default=str(REPO / "models"), help="folder of the models")
    parser.add_argument("--out", default="runs/demo", help="folder for logs and the plot")
    parser.add_argument("--no-plot", action="store_true", help="skip the trajectory plot")


def run(args: argparse.Namespace) -> int:
    if args.task not in TASKS:
        raise ConfigError(f"--task {args.task!r} unknown; valid: {', '.join(TASKS)}")
    if args.steps < 1:
        raise ConfigError(f"--steps {args.steps} out of range; valid: >= 1")
    models = Path(args.models).resolve()
    contenders = [
        Contender("GrBAL", models / "grbal.onnx", "grbal"),
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
    print(
        f"demo: task {args.task!r}, {args.steps} ticks at 10 Hz, condition "
        f"{args.condition!r}, simulator seed {args.seed}",
        flush=True,
    )
    rows = []
    for c in contenders:
        log = out / f"{c.name.lower()}.mcap"
        print(f"\n== {c.name}: {c.model} (adaptation: {c.mode})", flush=True)
        _episode(c, args, log)
        rows.append((c, log))
    print("\n== summary (from the logs)")
    print(
        f"{'controller':<10} {'mean dist m':>11} {'max dist m':>10} {'progress m':>10} "
        f"{'step p50 ms':>11} {'events':>6}"
    )
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
        print(
            f"{c.name:<10} {dist.mean():>11.3f} {dist.max():>10.3f} {progress:>10.2f} "
            f"{np.median(steps) if steps else float('nan'):>11.2f} {events:>6}"
        )
        trajectories[c.name] = np.array(
            [
                [t["pose"]["x"], t["pose"]["y"], t["pose"]["yaw"]]
                for t in run_log.ticks
                if t.get("pose")
            ]
        )
    if not args.no_plot:
        png = out / "trajectories.png"
        _plot(trajectories, args, png)
        print(f"plot: {png}")
    print(f"logs: {', '.join(str(log) for _, log in rows)} (open with Foxglove or `roach replay`)")
    return 0


def _episode(c: Contender, args: argparse.Namespace, log: Path) -> None:
    """One lockstep episode: the fake robot in a subprocess, `roach run` in another."""
    fake = ("--clock", "lockstep", "--condition", args.condition, "--seed", str(args.seed))
    with running_fake(*fake, cwd=str(REPO)) as (_sim, port):
        proc = subprocess.run(
            [sys.executable, "-m", "tools.cli", "run", "--port", port, "--model", str(c.model),
             "--mode", c.mode, "--task", args.task, "--steps", str(args.steps), "--lockstep",
             "--log", str(log)],
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
        path = path_points(args.task)
        world = np.stack(
            [x0 + c * path[:, 0] - s * path[:, 1], y0 + s * path[:, 0] + c * path[:, 1]], axis=1
        )
        ax.plot(world[:, 0], world[:, 1], "k--", lw=1, label=f"path ({args.task})")
    for name, xy in trajectories.items():
        if len(xy):
            ax.plot(xy[:, 0], xy[:, 1], lw=2, label=name)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{args.task}, condition {args.condition}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
