"""``roach bench onboard``: the onboard controller's numeric step times.

For each hidden size and candidate count it prints, from random weights of that size:
- adapt: one GrBAL step (Numba forward + backward + SGD + guard) on a window of M
  transitions, p50 / p99 in ms;
- plan: one random-shooting planning step (bind the adapted parameters, sample, predict
  N x H, score against a task), p50 / p99 in ms;
- the prediction's GFLOP/s (the N x H batched network evaluations alone; N x (H-1) with
  --fix-first-action 1, whose step 0 is shared by every candidate) and its
  ratio to a plain numpy float32 matmul of the dominant layer's size ([N, h] @ [h, h])
  timed in the same process, and the Numba loop forward's GFLOP/s on the same batch
  (why planning uses BLAS);
for each BLAS thread count asked for (default: 1 and the library's default).

``--quality`` and ``--closed-loop`` (both need ``--model``) compare planner settings by
control quality per compute instead (tools/bench_onboard_planners.py): with the model
as the world, or with ``roach sim`` + ``roach run``.
Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from onboard import kernels
from onboard.adaptation import Adapter
from onboard.blas import get_blas_threads, set_blas_threads
from onboard.model import LoadedModel, load_model, model_from_arrays
from onboard.planner import PlannerConfig, make_planner
from onboard.rollout import Rollout
from onboard.tasks import make_task
from robot_contract.errors import ConfigError
from tools import bench_onboard_planners

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
    default_threads = get_blas_threads()
    if opts.closed_loop:
        if not opts.model:
            raise ConfigError("roach bench onboard --closed-loop needs --model FILE")
        return bench_onboard_planners.closed_loop(opts)
    if opts.quality:
        if not opts.model:
            raise ConfigError("roach bench onboard --quality needs --model FILE (a trained model)")
        set_blas_threads(1)
        return bench_onboard_planners.quality(load_model(opts.model), opts)
    models: list[tuple[str, LoadedModel]] = []
    for spec in opts.hidden:
        hidden = tuple(int(h) for h in str(spec).split(","))
        models.append(("x".join(map(str, hidden)), _random_model(hidden)))
    if opts.model:
        m = load_model(opts.model)
        models.append((Path(opts.model).stem[:14], m))
    print(
        f"onboard bench: H={opts.horizon}, M={opts.window}, planner={opts.planner}, "
        f"fix_first_action={bool(opts.fix_first_action)}, "
        f"repeats={opts.repeats}, rollout workers={opts.workers}, "
        f"BLAS default threads={default_threads}"
    )
    header = (
        f"{'model':>14} {'N':>5} {'thr':>3} | {'adapt p50':>9} {'p99':>7} | {'plan p50':>8} "
        f"{'p99':>7} | {'pred GF/s':>9} {'mm GF/s':>8} {'ratio':>5} | {'numba GF/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for threads in opts.threads:
        n_thr = threads if threads > 0 else (default_threads or 1)
        set_blas_threads(n_thr)
        for name, model in models:
            for n in opts.candidates:
                r = _bench_one(model, n, opts)
                print(
                    f"{name:>14} {n:>5} {n_thr:>3} | "
                    f"{r['adapt_p50']:>9.2f} {r['adapt_p99']:>7.2f} | "
                    f"{r['plan_p50']:>8.2f} {r['plan_p99']:>7.2f} | {r['pred_gflops']:>9.1f} "
                    f"{r['mm_gflops']:>8.1f} {r['ratio']:>5.2f} | {r['numba_gflops']:>10.1f}"
                )
    if default_threads:
        set_blas_threads(default_threads)
    print(
        "times in ms (p50/p99 of the timed calls); GF/s = 2e9 float32 multiply-adds per second,"
        " from the fastest call (rates are peaks: on a shared machine the median mixes in other"
        " processes); ratio = prediction GF/s / matmul GF/s"
    )
    return 0


def _random_model(hidden: tuple[int, ...], seed: int = 0) -> LoadedModel:
    rng = np.random.default_rng(seed)
    dims = [24, *hidden, 24]
    weights = [
        (rng.standard_normal((o, i)) * np.sqrt(2.0 / i)).astype(np.float32)
        for i, o in itertools.pairwise(dims)
    ]
    biases = [(0.01 * rng.standard_normal(o)).astype(np.float32) for o in dims[1:]]
    norm = {
        "input_mean": np.zeros(24, np.float32),
        "input_std": np.ones(24, np.float32),
        "delta_mean": np.zeros(24, np.float32),
        "delta_std": np.full(24, 0.01, np.float32),
    }
    return model_from_arrays(weights, biases, norm, M=16, inner_lr=1e-3)


def _times_ms(fn: Callable[[], object], repeats: int) -> np.ndarray:
    fn()  # warm-up (compilation, first-touch of buffers)
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = (time.perf_counter_ns() - t0) * 1e-6
    return out


def _bench_one(model: LoadedModel, n: int, opts: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(1)
    h = opts.horizon
    state = np.zeros(24)
    state[6] = state[8] = state[10] = 1.0
    state[23] = 7.4
    states = state + 0.01 * rng.standard_normal((opts.window + 1, 24))
    actions = rng.uniform(2.0, 9.0, (opts.window, 2))
    adapter = Adapter(model, "grbal", M=opts.window)
    t_adapt = _times_ms(lambda: adapter.adapt(states, actions), opts.repeats)

    fix = bool(opts.fix_first_action)
    cfg = PlannerConfig(
        kind=opts.planner,
        n_candidates=n,
        horizon=h,
        cem_elites=min(50, n),
        fix_first_action=fix,
    )
    planner = make_planner(cfg)
    rollout = Rollout(model, n, h, workers=opts.workers)
    task = make_task("straight", state)
    low, high = np.full(2, 2.0), np.full(2, 9.0)
    in_flight = np.array([5.0, 5.0])

    def plan() -> object:
        return planner.plan(rollout.bind(adapter.params, state, task.cost), in_flight, low, high)

    t_plan = _times_ms(plan, opts.repeats)

    cand = rng.uniform(2.0, 9.0, (n, h, 2)).astype(np.float32)
    if fix:
        cand[:, 0] = in_flight
    cost = rollout.bind(adapter.params, state, lambda ps: ps[:, -1, 0])
    t_pred = _times_ms(lambda: cost(cand), opts.repeats)
    dims = [int(d) for d in model.dims]
    macs_row = 26 * dims[1] + sum(dims[i] * dims[i + 1] for i in range(1, len(dims) - 1))
    pred_flops = 2.0 * n * (h - 1 if fix else h) * macs_row
    pred_gflops = pred_flops / (np.min(t_pred) * 1e-3) / 1e9

    width = max(dims[1:-1]) if len(dims) > 2 else dims[0]
    a = rng.standard_normal((n, width)).astype(np.float32)
    b = rng.standard_normal((width, width)).astype(np.float32)
    c = np.empty((n, width), np.float32)
    t_mm = _times_ms(lambda: np.matmul(a, b, out=c), opts.repeats)
    mm_gflops = 2.0 * n * width * width / (np.min(t_mm) * 1e-3) / 1e9

    xn = rng.standard_normal((n, 24)).astype(np.float32)
    out = np.empty((n, 24), np.float32)
    acts = np.empty(kernels.work_sizes(model.dims, n)[0], np.float32)
    t_nb = _times_ms(
        lambda: kernels.forward_nb(adapter.params, model.dims, xn, out, acts),
        max(3, opts.repeats // 10),
    )
    nb_flops = 2.0 * n * sum(dims[i] * dims[i + 1] for i in range(len(dims) - 1))
    rollout.close()
    return {
        "adapt_p50": float(np.median(t_adapt)),
        "adapt_p99": float(np.percentile(t_adapt, 99)),
        "plan_p50": float(np.median(t_plan)),
        "plan_p99": float(np.percentile(t_plan, 99)),
        "pred_gflops": float(pred_gflops),
        "mm_gflops": float(mm_gflops),
        "ratio": float(pred_gflops / mm_gflops),
        "numba_gflops": float(nb_flops / (np.min(t_nb) * 1e-3) / 1e9),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="roach bench onboard", description=HELP)
    add_arguments(p)
    raise SystemExit(run_benchmark(p.parse_args()))
