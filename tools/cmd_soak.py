"""``roach soak``: the controller for hours of simulated time in lockstep, conditions
changing every simulated minute; prints memory growth, logged ticks, stalls and the link's
counters (offboard_training/soak.py, docs/reliability.md). Exit code 1 if a promise of
docs/reliability.md does not hold (memory growth over 5 MB per hour, a tick missing from
the log, an unrecovered stall)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.argtypes import SEED, float_in

HELP = "hours of simulated running in lockstep: memory, logged ticks, stalls"
MAX_GROWTH_MB_PER_H = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hours",
        type=float_in(0, 48, open_low=True),
        default=1.0,
        help="simulated hours (default 1)",
    )
    parser.add_argument("--model", default="models/grbal.onnx", help="model file")
    parser.add_argument("--config", help="controller TOML config, as for roach run")
    parser.add_argument("--seed", type=SEED, default=0, help="simulator seed (default 0)")
    parser.add_argument("--log", default="runs/soak.mcap", help="MCAP log of every tick")


def run(args: argparse.Namespace) -> int:
    from offboard_training.soak import run_soak, soak_config
    from onboard.config import load_config

    cfg = soak_config(load_config(args.config))
    res = run_soak(args.hours, args.model, Path(args.log), cfg, seed=args.seed)
    for line in res.lines():
        print(line)
    ok = (
        res.ticks_logged == res.ticks
        and res.unrecovered_stalls == 0
        and not res.rss_growth_mb > MAX_GROWTH_MB_PER_H * max(args.hours, 1.0)
    )
    print("soak: " + ("ok" if ok else "FAILED (docs/reliability.md)"))
    return 0 if ok else 1
