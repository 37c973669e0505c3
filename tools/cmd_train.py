"""``roach train``: train an MB or GrBAL dynamics model into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.argtypes import SEED

HELP = "train an MB or GrBAL dynamics model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from offboard_training.config import TrainConfig

    d = TrainConfig()
    parser.add_argument("--algo", help="mb or grbal (required unless --config gives it)")
    parser.add_argument(
        "--config",
        type=Path,
        help="training TOML (e.g. a sweep's best.toml); options given with a value other "
        "than their default override it",
    )
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        type=Path,
        help="dataset folder(s), folder(s) of MCAP logs (roach collect --port, roach run) "
        "or log files, pooled",
    )
    parser.add_argument("--out", required=True, type=Path, help="run folder to write")
    parser.add_argument("--hidden", default="256,256", help="hidden widths, e.g. 256,256")
    parser.add_argument("--M", type=int, default=d.M, help="past window (adaptation)")
    parser.add_argument("--K", type=int, default=d.K, help="future window (meta-loss)")
    parser.add_argument("--inner-lr", type=float, default=d.inner_lr, help="adaptation step")
    parser.add_argument(
        "--inner-steps",
        type=int,
        default=d.inner_steps,
        help="GrBAL: adaptation steps kept from tick to tick per meta-example (1 = published)",
    )
    parser.add_argument(
        "--learn-step",
        action="store_true",
        help="GrBAL: meta-learn one step size per weight and bias (Meta-SGD), from --inner-lr",
    )
    parser.add_argument("--lr", type=float, default=d.outer_lr, help="Adam learning rate")
    parser.add_argument("--meta-batch", type=int, default=d.meta_batch, help="windows per step")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="MB batch")
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay, help="L2")
    parser.add_argument("--grad-clip", type=float, default=d.grad_clip, help="grad-norm clip")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="most epochs")
    parser.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch)
    parser.add_argument("--patience", type=int, default=d.patience, help="early stopping")
    parser.add_argument(
        "--lr-decay", type=float, default=d.lr_decay, help="lr factor on a plateau (1 = none)"
    )
    parser.add_argument("--lr-decay-patience", type=int, default=d.lr_decay_patience)
    parser.add_argument("--max-lr-decays", type=int, default=d.max_lr_decays)
    parser.add_argument("--max-minutes", type=float, default=d.max_minutes, help="0 = no cap")
    parser.add_argument("--val-fraction", type=float, default=d.val_fraction)
    parser.add_argument(
        "--init-from", default="", help="start from this run folder's weights (e.g. the MB run)"
    )
    parser.add_argument("--seed", type=SEED, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads")
    parser.add_argument(
        "--aggregate",
        type=int,
        default=0,
        help="on-policy iterations after the first fit: MPC-collect with the model, add, retrain",
    )
    parser.add_argument("--aggregate-episodes", type=int, default=20, help="episodes per iteration")
    parser.add_argument("--workers", type=int, default=2, help="collection workers (aggregate)")
    parser.add_argument("--no-progress", action="store_true")


def config_from_args(args: argparse.Namespace):
    from offboard_training.config import TrainConfig, parse_hidden
    from robot_contract.errors import ConfigError

    if args.config:
        return _config_over_file(args)
    if args.algo is None:
        raise ConfigError("--algo is required (mb or grbal) unless --config gives it")
    return TrainConfig(
        algo=args.algo,
        hidden=parse_hidden(args.hidden),
        M=args.M,
        K=args.K,
        inner_lr=args.inner_lr,
        inner_steps=args.inner_steps,
        learn_step=args.learn_step,
        outer_lr=args.lr,
        meta_batch=args.meta_batch,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        patience=args.patience,
        lr_decay=args.lr_decay,
        lr_decay_patience=args.lr_decay_patience,
        max_lr_decays=args.max_lr_decays,
        max_minutes=args.max_minutes,
        val_fraction=args.val_fraction,
        init_from=str(args.init_from),
        seed=args.seed,
        threads=args.threads,
    )


def _config_over_file(args: argparse.Namespace):
    """The --config file's configuration, with every option that differs from its default."""
    from offboard_training.config import TrainConfig
    from offboard_training.sweep import load_config_toml

    from_file = load_config_toml(args.config)
    algo = args.algo or from_file.algo
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = {a.dest: a.default for a in parser._actions if a.dest != "help"}
    given = config_from_args(argparse.Namespace(**{**vars(args), "config": None, "algo": algo}))
    unset = config_from_args(argparse.Namespace(**{**defaults, "algo": algo}))
    changed = {k: v for k, v in given.to_json().items() if v != unset.to_json()[k]}
    return TrainConfig.from_json({**from_file.to_json(), **changed, "algo": algo})


def run(args: argparse.Namespace) -> int:
    from offboard_training.pipeline import train_with_aggregation
    from robot_contract.errors import ConfigError

    config = config_from_args(args)
    if args.aggregate < 0 or args.aggregate_episodes < 1:
        raise ConfigError("--aggregate must be >= 0 and --aggregate-episodes >= 1")
    result = train_with_aggregation(
        config,
        list(args.data),
        args.out,
        iterations=args.aggregate,
        episodes_per_iteration=args.aggregate_episodes,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(
        f"{config.algo}: best validation {result.best_val:.4f} at epoch {result.best_epoch} "
        f"({result.epochs_run} epochs, stopped by {result.stopped_by}, {result.wall_s:.0f} s); "
        f"run folder {result.run_dir}"
    )
    return 0
