"""``roach bench onboard``: the onboard controller's numeric step times.

For each hidden size, candidate count N and BLAS thread count (default: 1 and the
library's default) it prints, from random weights of that size, the adaptation and
planning step times (p50 / p99 ms) and the batched prediction's GFLOP/s against a plain
numpy matmul of the dominant layer's size (onboard/bench/step_times.py says what each
number measures).

``--quality`` and ``--closed-loop`` (both need ``--model``) compare planner settings by
control quality per compute instead (onboard/bench/planner_compare.py): with the model
as the world, or with ``roach sim`` + ``roach run``. Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from onboard.bench import planner_compare, step_times
from onboard.blas import get_blas_threads, set_blas_threads
from onboard.model import LoadedModel, load_model
from robot_contract.errors import ConfigError

HELP = "onboard step times: adaptation and planning p50/p99, planning GFLOP/s vs matmul"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hidden",
        nargs="+",
        default=["128,128", "256,256", "500,500"],
        help="hidden widths to benchmark, e.g. 500,500 (default: 128,128 256,256 500,500)",
    )
    parser.add_argument(
        "--candidates", type=int, nargs="+", default=[1000, 2000], help="planner N values"
    )
    parser.add_argument("--horizon", type=int, default=5, help="planning horizon H (default 5)")
    parser.add_argument("--window", type=int, default=16, help="adaptation window M (default 16)")
    parser.add_argument("--planner", choices=("random", "cem"), default="random")
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per measurement")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 0],
        help="BLAS thread counts to measure; 0 = the library default (default: 1 0)",
    )
    parser.add_argument("--model", default=None, help="also benchmark this model file")
    parser.add_argument(
        "--workers", type=int, default=1, help="rollout worker threads (onboard.rollout)"
    )
    parser.add_argument(
        "--quality",
        action="store_true",
        help="compare planner settings in closed loop with --model as the world",
    )
    parser.add_argument(
        "--closed-loop",
        action="store_true",
        help="compare planner settings with roach sim + roach run (needs --model)",
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["random:2000", "random:1000", "random:500", "random:250", "cem:3x300",
                 "cem:3x150", "cem:2x100"],
        help="--quality planner settings: random:N or cem:ITERSxN",
    )  # fmt: skip
    parser.add_argument(
        "--tasks", nargs="+", default=["straight", "left", "figure8"], help="--quality tasks"
    )
    parser.add_argument(
        "--episodes", type=int, default=2, help="--quality/--closed-loop seeds per task"
    )
    parser.add_argument("--steps", type=int, default=110, help="--quality steps per episode")
    parser.add_argument(
        "--fix-first-action",
        type=int,
        choices=(0, 1),
        default=0,
        help="1 = step 0 is the command in flight (published), 0 = free (controller default)",
    )


def run(args: argparse.Namespace) -> int:
    return run_benchmark(args)


def run_benchmark(args: argparse.Namespace) -> int:
    """Runs the benchmark with the options of ``add_arguments`` (missing ones: defaults)."""
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    opts = defaults.parse_args([])
    for key, value in vars(args).items():
        if hasattr(opts, key) and value is not None:
            setattr(opts, key, value)
    if getattr(args, "quick", False):  # `roach bench all --quick`
        opts.hidden, opts.candidates, opts.threads, opts.repeats = (
            ["128,128", "500,500"],
            [1000],
            [1],
            8,
        )
    if opts.closed_loop:
        if not opts.model:
            raise ConfigError("roach bench onboard --closed-loop needs --model FILE")
        return _closed_loop(opts)
    if opts.quality:
        if not opts.model:
            raise ConfigError("roach bench onboard --quality needs --model FILE (a trained model)")
        set_blas_threads(1)
        return _quality(load_model(opts.model), opts)
    return _step_times(opts)


def _step_times(opts: argparse.Namespace) -> int:
    models: list[tuple[str, LoadedModel]] = []
    for spec in opts.hidden:
        hidden = tuple(int(h) for h in str(spec).split(","))
        models.append(("x".join(map(str, hidden)), step_times.random_model(hidden)))
    if opts.model:
        models.append((Path(opts.model).stem[:14], load_model(opts.model)))
    settings = step_times.StepBenchSettings(
        horizon=opts.horizon,
        window=opts.window,
        planner=opts.planner,
        fix_first_action=bool(opts.fix_first_action),
        repeats=opts.repeats,
        workers=opts.workers,
    )
    print(step_times.title(settings, get_blas_threads()))
    print(step_times.HEADER)
    print("-" * len(step_times.HEADER))
    for row in step_times.step_time_rows(models, opts.candidates, opts.threads, settings):
        print(step_times.format_row(row))
    print(step_times.FOOTNOTE)
    return 0


def _comparison(opts: argparse.Namespace) -> planner_compare.PlannerComparison:
    return planner_compare.PlannerComparison(
        settings=tuple(opts.settings),
        tasks=tuple(opts.tasks),
        episodes=opts.episodes,
        steps=opts.steps,
        horizon=opts.horizon,
        fix_first_action=bool(opts.fix_first_action),
    )


def _quality(model: LoadedModel, opts: argparse.Namespace) -> int:
    """Planner settings in closed loop with ``model`` as the world, one row each."""
    comp = _comparison(opts)
    header = planner_compare.quality_header(comp)
    print(planner_compare.quality_title(model, comp))
    print(header)
    print("-" * len(header))
    for row in planner_compare.quality_rows(model, comp):
        print(planner_compare.format_quality_row(row))
    print(planner_compare.QUALITY_FOOTNOTE)
    return 0


def _closed_loop(opts: argparse.Namespace) -> int:
    """Planner settings with ``roach sim`` + ``roach run``, one row each."""
    comp = _comparison(opts)
    print(planner_compare.closed_loop_title(opts.model, comp))
    print(planner_compare.CLOSED_LOOP_HEADER)
    for row in planner_compare.closed_loop_rows(opts.model, comp):
        for line in planner_compare.format_closed_loop_row(row):
            print(line)
    print(planner_compare.CLOSED_LOOP_FOOTNOTE)
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="roach bench onboard", description=HELP)
    add_arguments(p)
    raise SystemExit(run_benchmark(p.parse_args()))
