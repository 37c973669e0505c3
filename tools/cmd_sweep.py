"""``roach sweep``: train a grid of configurations and pick the best (docs/cluster.md).

Each value option may be repeated; the grid is every combination. Writes OUT/sweep.json,
OUT/sweep.md and OUT/best.toml (``roach train --config OUT/best.toml`` trains it again).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a grid of configurations and pick the best"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from offboard_training.config import TrainConfig

    d = TrainConfig()
    parser.add_argument("--algo", default="grbal", help="mb or grbal (default grbal)")
    parser.add_argument(
        "--data", required=True, nargs="+", type=Path, help="dataset folder(s), pooled"
    )
    parser.add_argument("--out", required=True, type=Path, help="sweep folder to write")
    parser.add_argument(
        "--config", type=Path, help="training TOML the grid starts from (default: built-in)"
    )
    parser.add_argument(
        "--hidden", action="append", metavar="W,W", help="hidden widths; repeat (e.g. 64,64)"
    )
    parser.add_argument("--M", action="append", type=int, help="past window; repeat")
    parser.add_argument("--K", action="append", type=int, help="future window; repeat")
    parser.add_argument("--inner-lr", action="append", type=float, help="adaptation step; repeat")
    parser.add_argument("--seed", action="append", type=int, help="training seed; repeat")
    parser.add_argument("--epochs", type=int, help=f"most epochs per run (default {d.epochs})")
    parser.add_argument(
        "--steps-per-epoch", type=int, help=f"outer steps per epoch (default {d.steps_per_epoch})"
    )
    parser.add_argument("--patience", type=int, help=f"early stopping (default {d.patience})")
    parser.add_argument(
        "--cluster",
        default="",
        metavar="ADDRESS",
        help="run the grid as Ray Tune trials: local, auto, HOST:PORT or ray://HOST:PORT "
        "(default: one run after another here)",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from offboard_training.config import TrainConfig, parse_hidden
    from offboard_training.sweep import SweepGrid, best_row, load_config_toml, run_sweep

    base = load_config_toml(args.config) if args.config else TrainConfig()
    budget = {
        k: v
        for k, v in {
            "algo": args.algo,
            "epochs": args.epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "patience": args.patience,
        }.items()
        if v is not None
    }
    base = TrainConfig.from_json({**base.to_json(), **budget})
    grid = SweepGrid(
        base=dataclasses.replace(base),
        hidden=tuple(parse_hidden(h) for h in args.hidden) if args.hidden else (base.hidden,),
        M=tuple(args.M or (base.M,)),
        K=tuple(args.K or (base.K,)),
        inner_lr=tuple(args.inner_lr or (base.inner_lr,)),
        seeds=tuple(args.seed or (base.seed,)),
    )
    rows = run_sweep(grid, args.data, args.out, args.cluster, progress=not args.no_progress)
    best = best_row(rows)
    print((args.out / "sweep.md").read_text(), end="")
    print(f"best: {best['name']} (validation {best['best_val']:.4f}); config {args.out}/best.toml")
    return 0
