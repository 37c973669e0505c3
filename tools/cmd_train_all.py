"""``roach train-all``: collect, train MB and GrBAL, export the shipped models."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.argtypes import SEED

HELP = "collect, train and export the shipped models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("models"), help="folder for the .onnx")
    parser.add_argument("--seed", type=SEED, default=0, help="collection and training seed")
    parser.add_argument(
        "--budget-minutes", type=float, default=50.0, help="wall-clock cap for the whole run"
    )
    parser.add_argument(
        "--minutes-per-terrain",
        type=float,
        default=30.0,
        help="simulated minutes of random-action data per training terrain",
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="data and run folders (runs/train-all-seedN)"
    )
    parser.add_argument("--data", type=Path, default=None, help="reuse a dataset, skip collect")
    parser.add_argument("--workers", type=int, default=2, help="collection workers")
    parser.add_argument(
        "--vary",
        default="terrain",
        help="what the training episodes vary: terrain (the published data) or dynamics "
        "(also motor gains, payload, slope, battery; docs/training.md)",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from offboard_training.pipeline import train_all

    report = train_all(
        args.out,
        seed=args.seed,
        budget_minutes=args.budget_minutes,
        work=args.work,
        minutes_per_terrain=args.minutes_per_terrain,
        workers=args.workers,
        progress=not args.no_progress,
        data=args.data,
        variation=args.vary,
    )
    print(f"data {report.data_dir} (collected in {report.collect_s:.0f} s)")
    for name, result in report.results.items():
        written = ""
        if name in report.exports:
            written = f" -> {report.exports[name]} ({report.sizes[name] / 1e6:.2f} MB)"
        print(
            f"{name}: best validation {result.best_val:.4f} at epoch {result.best_epoch}/"
            f"{result.epochs_run} ({result.stopped_by}, {result.wall_s:.0f} s){written}"
        )
    print(f"total {report.wall_s / 60:.1f} min")
    return 0
