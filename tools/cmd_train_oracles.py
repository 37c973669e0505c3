"""``roach train-oracles``: one MB model per test condition, trained on that condition.

The closed-loop suite normalises to these (docs/evaluation.md): ``roach eval --oracle DIR``
runs each condition's oracle beside the controllers compared. Already trained oracles
(same condition, seed and minutes) are kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_contract.errors import ConfigError

HELP = "train the oracle models of the closed-loop suite"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/oracles"), help="oracle folder")
    parser.add_argument("--condition", action="append", metavar="COND", help="a condition; repeat")
    parser.add_argument(
        "--suite", help="every perturbed condition of a suite of roach eval (paper, smoke)"
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="driving time per oracle")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--cluster",
        default="",
        metavar="ADDRESS",
        help="one Ray task per oracle (collect and train): local, auto, HOST:PORT or "
        "ray://HOST:PORT (docs/cluster.md)",
    )


def run(args: argparse.Namespace) -> int:
    from offboard_training.closed_loop import SUITES, perturbed_conditions
    from offboard_training.oracle import train_oracles

    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed}: must be >= 0")
    if bool(args.suite) == bool(args.condition):
        raise ConfigError("give --suite NAME or --condition COND (repeatable), one of them")
    if args.suite and args.suite not in SUITES:
        raise ConfigError(f"--suite {args.suite!r} unknown; valid: {', '.join(SUITES)}")
    conditions = perturbed_conditions(args.suite) if args.suite else args.condition
    from firmware_bridge.sim.conditions import parse_condition

    for c in conditions:
        parse_condition(c)
    reports = train_oracles(
        conditions, args.out, args.seed, args.minutes, args.workers, print, cluster=args.cluster
    )
    for report in reports:
        print(f"{report.condition or 'nominal':<40} {report.path}")
    return 0
