"""``roach collect``: simulated rollouts into a dataset folder (docs/training.md), or with
``--port DEV`` random-action data on a robot into a folder of MCAP logs
(tools/collect_robot.py, onboard/collect.py; the ``onboard`` extra is enough)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.argtypes import COUNT, SEED, float_in
from tools.pose_option import add_pose_argument, add_robot_argument

HELP = "collect rollouts in simulation into a dataset, or on a robot (--port)"


def _xy(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write X,Y in metres") from None
    return x, y


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    parser.add_argument("--episodes", type=COUNT, default=100, help="episodes (110 steps each)")
    parser.add_argument("--seed", type=SEED, default=0, help="collection seed")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--cluster",
        default="",
        metavar="ADDRESS",
        help="run the episodes on a Ray cluster instead of --workers local processes: "
        "local, auto, HOST:PORT or ray://HOST:PORT (docs/cluster.md)",
    )
    parser.add_argument("--policy", default="random", help="random (default) or mpc")
    parser.add_argument(
        "--model", default="", help="model file the mpc policy adapts and plans with"
    )
    parser.add_argument(
        "--task",
        default="",
        help="mpc: path to follow (onboard.tasks.TASKS; default: one drawn per episode)",
    )
    parser.add_argument(
        "--candidates", type=int, default=500, help="mpc: action sequences per step"
    )
    parser.add_argument("--horizon", type=int, default=5, help="mpc: steps per sequence (>= 2)")
    parser.add_argument(
        "--condition",
        default="",
        help="fixed condition string for every episode (default: sampled training terrains)",
    )
    parser.add_argument(
        "--vary",
        default="terrain",
        help="sampled conditions vary the terrain (default, the published data) or the "
        "dynamics too (motor gains, payload, slope, battery)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    robot = parser.add_argument_group("on a robot (--port)")
    robot.add_argument("--port", help="collect on the robot on this serial port (or fake's pty)")
    add_pose_argument(robot)
    add_robot_argument(robot)
    robot.add_argument("--config", help="controller TOML config ([loop], [link], [pose])")
    robot.add_argument(
        "--clock",
        choices=("auto", "realtime", "lockstep"),
        default="auto",
        help="as roach run --clock",
    )
    robot.add_argument("--lockstep", action="store_true", help="same as --clock lockstep")
    robot.add_argument("--label", default="carpet", help="terrain label of the data")
    robot.add_argument(
        "--minutes",
        type=float_in(0.001, 1e4),
        default=30.0,
        help="minutes of driving for the label in --out (default 30)",
    )
    robot.add_argument(
        "--arena-radius-m",
        type=float_in(0.05, 1e3),
        default=1.5,
        help="tracked area around the centre; beyond it: stop (default 1.5)",
    )
    robot.add_argument(
        "--arena-margin-m",
        type=float_in(0.01, 1e3),
        default=0.3,
        help="steer back this far inside the radius (default 0.3)",
    )
    robot.add_argument(
        "--arena-centre",
        type=_xy,
        metavar="X,Y",
        help="arena centre in the pose frame (default: the start position)",
    )
    robot.add_argument(
        "--max-tilt-deg",
        type=float_in(1, 179),
        default=45.0,
        help="roll or pitch beyond this stops the session (default 45)",
    )
    robot.add_argument(
        "--battery-floor-v",
        type=float_in(0, 100),
        default=3.3,
        help="battery below this stops the session (default 3.3 V)",
    )


def run(args: argparse.Namespace) -> int:
    if args.port:
        from tools.collect_robot import run_on_robot

        return run_on_robot(args)
    from offboard_training.collect import CollectConfig, collect

    if args.condition:
        from firmware_bridge.sim.conditions import parse_condition

        parse_condition(args.condition)  # a bad string fails here, before any worker starts
    config = CollectConfig(
        episodes=args.episodes,
        seed=args.seed,
        workers=args.workers,
        policy=args.policy,
        model=args.model,
        condition=args.condition,
        task=args.task,
        candidates=args.candidates,
        horizon=args.horizon,
        variation=args.vary,
    )
    info = collect(config, args.out, progress=not args.no_progress, cluster=args.cluster)
    print(
        f"wrote {args.episodes} episodes, {info['transitions']} transitions to {args.out} "
        f"in {info['wall_s']:.1f} s"
    )
    return 0
