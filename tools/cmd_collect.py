"""``roach collect``: simulated rollouts into a dataset folder (docs/training.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.argtypes import COUNT, SEED

HELP = "collect rollouts in simulation into a dataset"


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


def run(args: argparse.Namespace) -> int:
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
