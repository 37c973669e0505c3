"""The onboard controller's numeric step times, from random weights of a given size.

For one model and candidate count N, ``bench_step`` measures:
- adapt: one GrBAL step (forward + backward + SGD + guard) on a window of M
  transitions, p50 / p99 in ms;
- plan: one planning step (bind the adapted parameters, sample, predict N x H, score
  against a task), p50 / p99 in ms;
- the prediction's GFLOP/s (the N x H batched network evaluations alone; N x (H-1) with
  the first action fixed, whose step 0 is shared by every candidate) and a plain numpy
  float32 matmul of the dominant layer's size ([N, h] @ [h, h]) timed in the same
  process, the reference the prediction is held against.

``step_time_rows`` runs it over models x N x BLAS thread counts; ``title``, ``HEADER``,
``format_row`` and ``FOOTNOTE`` are the table ``roach bench onboard`` prints.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from onboard.adaptation import Adapter
from onboard.blas import get_blas_threads, set_blas_threads
from onboard.model import LoadedModel, model_from_arrays
from onboard.planner import PlannerConfig, make_planner
from onboard.rollout import Rollout
from onboard.tasks import TaskConfig, make_task


@dataclass(frozen=True)
class StepBenchSettings:
    """What every measurement of a table shares."""

    horizon: int = 5
    """Planning horizon H (steps)."""
    window: int = 16
    """Adaptation window M (transitions)."""
    planner: str = "random"
    """Planner kind: ``random`` or ``cem``."""
    fix_first_action: bool = False
    """Step 0 of every candidate is the command in flight (pipelined timing)."""
    repeats: int = 40
    """Timed calls per measurement."""
    workers: int = 1
    """Rollout worker threads (onboard.rollout)."""


@dataclass(frozen=True)
class StepTimes:
    """One model at one N: times in ms, rates in GFLOP/s (from the fastest call)."""

    adapt_p50_ms: float
    adapt_p99_ms: float
    plan_p50_ms: float
    plan_p99_ms: float
    pred_gflops: float
    """The batched prediction alone."""
    mm_gflops: float
    """numpy float32 matmul [N, h] @ [h, h], h the widest hidden layer."""

    @property
    def ratio(self) -> float:
        """Prediction GFLOP/s over matmul GFLOP/s."""
        return self.pred_gflops / self.mm_gflops


@dataclass(frozen=True)
class StepTimesRow:
    """One line of the table."""

    model: str
    n_candidates: int
    threads: int
    """BLAS threads the row was measured with."""
    times: StepTimes


def random_model(hidden: tuple[int, ...], seed: int = 0) -> LoadedModel:
    """A model of hidden widths ``hidden`` with He-initialised random weights (float32),
    identity input normalisation and a 0.01 delta scale; M=16, inner_lr=1e-3."""
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


def times_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> np.ndarray:
    """Wall times [repeats] in ms of ``fn()``, after ``warmup`` untimed calls
    (first touch of buffers, thread pools)."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = (time.perf_counter_ns() - t0) * 1e-6
    return out


def prediction_macs_per_row(dims: Sequence[int] | np.ndarray) -> int:
    """Multiply-adds of one network evaluation as the rollout computes it: every layer's
    product has one more input, the constant 1 its bias is folded against."""
    d = [int(x) for x in dims]
    return sum((d[i] + 1) * d[i + 1] for i in range(len(d) - 1))


def bench_step(model: LoadedModel, n: int, settings: StepBenchSettings) -> StepTimes:
    """Times adaptation, planning, the batched prediction and the matmul reference for
    ``model`` with ``n`` candidates."""
    rng = np.random.default_rng(1)
    h = settings.horizon
    state = np.zeros(24)
    state[6] = state[8] = state[10] = 1.0
    state[23] = 7.4
    states = state + 0.01 * rng.standard_normal((settings.window + 1, 24))
    actions = rng.uniform(2.0, 9.0, (settings.window, 2))
    adapter = Adapter(model, "grbal", M=settings.window)
    t_adapt = times_ms(lambda: adapter.adapt(states, actions), settings.repeats)

    # --- planning: bind, sample, predict, score
    fix = settings.fix_first_action
    cfg = PlannerConfig(kind=settings.planner, n_candidates=n, horizon=h, cem_elites=min(50, n))
    planner = make_planner(cfg, fix_first_action=fix)
    rollout = Rollout(model, n, h, workers=settings.workers)
    task = make_task(TaskConfig(), state)
    low, high = np.full(2, 2.0), np.full(2, 9.0)
    in_flight = np.array([5.0, 5.0])

    def plan() -> object:
        return planner.plan(rollout.bind(adapter.params, state, task.cost), in_flight, low, high)

    t_plan = times_ms(plan, settings.repeats)

    # --- the prediction alone, against a matmul of the widest layer
    cand = rng.uniform(2.0, 9.0, (n, h, 2)).astype(np.float32)
    if fix:
        cand[:, 0] = in_flight
    cost = rollout.bind(adapter.params, state, lambda ps: ps[:, -1, 0])
    t_pred = times_ms(lambda: cost(cand), settings.repeats)
    dims = [int(d) for d in model.dims]
    pred_flops = 2.0 * n * (h - 1 if fix else h) * prediction_macs_per_row(dims)
    pred_gflops = pred_flops / (np.min(t_pred) * 1e-3) / 1e9

    width = max(dims[1:-1]) if len(dims) > 2 else dims[0]
    a = rng.standard_normal((n, width)).astype(np.float32)
    b = rng.standard_normal((width, width)).astype(np.float32)
    c = np.empty((n, width), np.float32)
    t_mm = times_ms(lambda: np.matmul(a, b, out=c), settings.repeats)
    mm_gflops = 2.0 * n * width * width / (np.min(t_mm) * 1e-3) / 1e9
    rollout.close()
    return StepTimes(
        adapt_p50_ms=float(np.median(t_adapt)),
        adapt_p99_ms=float(np.percentile(t_adapt, 99)),
        plan_p50_ms=float(np.median(t_plan)),
        plan_p99_ms=float(np.percentile(t_plan, 99)),
        pred_gflops=float(pred_gflops),
        mm_gflops=float(mm_gflops),
    )


def step_time_rows(
    models: Sequence[tuple[str, LoadedModel]],
    candidates: Sequence[int],
    threads: Sequence[int],
    settings: StepBenchSettings,
) -> Iterator[StepTimesRow]:
    """``bench_step`` for each BLAS thread count (0 = the library default), named model
    and N, in that nesting; the library's default thread count is restored at the end."""
    default_threads = get_blas_threads()
    try:
        for t in threads:
            n_thr = t if t > 0 else (default_threads or 1)
            set_blas_threads(n_thr)
            for name, model in models:
                for n in candidates:
                    yield StepTimesRow(name, n, n_thr, bench_step(model, n, settings))
    finally:
        if default_threads:
            set_blas_threads(default_threads)


def title(settings: StepBenchSettings, default_threads: int | None) -> str:
    """The line above the table."""
    return (
        f"onboard bench: H={settings.horizon}, M={settings.window}, planner={settings.planner}, "
        f"fix_first_action={settings.fix_first_action}, "
        f"repeats={settings.repeats}, rollout workers={settings.workers}, "
        f"BLAS default threads={default_threads}"
    )


HEADER = (
    f"{'model':>14} {'N':>5} {'thr':>3} | {'adapt p50':>9} {'p99':>7} | {'plan p50':>8} "
    f"{'p99':>7} | {'pred GF/s':>9} {'mm GF/s':>8} {'ratio':>5}"
)

FOOTNOTE = (
    "times in ms (p50/p99 of the timed calls); GF/s = 2e9 float32 multiply-adds per second,"
    " from the fastest call (rates are peaks: on a shared machine the median mixes in other"
    " processes); ratio = prediction GF/s / matmul GF/s"
)


def format_row(row: StepTimesRow) -> str:
    """One table line under ``HEADER``."""
    r = row.times
    return (
        f"{row.model:>14} {row.n_candidates:>5} {row.threads:>3} | "
        f"{r.adapt_p50_ms:>9.2f} {r.adapt_p99_ms:>7.2f} | "
        f"{r.plan_p50_ms:>8.2f} {r.plan_p99_ms:>7.2f} | {r.pred_gflops:>9.1f} "
        f"{r.mm_gflops:>8.1f} {r.ratio:>5.2f}"
    )
