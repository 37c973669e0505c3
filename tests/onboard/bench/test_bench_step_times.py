"""The onboard step-time benchmark on a tiny budget (numbers only; no timing asserted)."""

from __future__ import annotations

import math

import numpy as np

from onboard.bench.step_times import (
    HEADER,
    StepBenchSettings,
    bench_step,
    format_row,
    prediction_macs_per_row,
    random_model,
    step_time_rows,
    times_ms,
)
from onboard.blas import get_blas_threads

SMALL = StepBenchSettings(horizon=3, window=8, repeats=2)


def test_random_model_has_the_asked_widths() -> None:
    """Hidden widths (16, 24) give dims 24-16-24-24, the same weights for the same seed."""
    a, b = random_model((16, 24)), random_model((16, 24))
    assert [int(d) for d in a.dims] == [24, 16, 24, 24]
    assert np.array_equal(a.theta, b.theta)


def test_prediction_macs_count_the_folded_biases() -> None:
    """Every product has one more input, the bias's: 25*h1 + (h1+1)*h2 + (h2+1)*24."""
    assert prediction_macs_per_row([24, 16, 8, 24]) == 25 * 16 + 17 * 8 + 9 * 24


def test_times_ms_warms_up_then_times_each_call() -> None:
    """repeats + 1 calls (one untimed), repeats non-negative times."""
    calls = []
    t = times_ms(lambda: calls.append(1), 4)
    assert len(calls) == 5 and t.shape == (4,) and (t >= 0).all()


def test_bench_step_gives_finite_positive_numbers() -> None:
    """Every time and rate is finite and positive, for both planner kinds and either timing."""
    model = random_model((16, 16))
    for settings in (SMALL, StepBenchSettings(3, 8, "cem", True, 2)):
        r = bench_step(model, 40, settings)
        values = [r.adapt_p50_ms, r.plan_p50_ms, r.pred_gflops, r.mm_gflops]
        assert all(math.isfinite(v) and v > 0 for v in values)
        assert r.adapt_p99_ms >= r.adapt_p50_ms and r.ratio == r.pred_gflops / r.mm_gflops


def test_rows_follow_threads_models_candidates_and_restore_blas() -> None:
    """One row per thread count x model x N, in that nesting; BLAS threads restored."""
    before = get_blas_threads()
    models = [("a", random_model((8, 8))), ("b", random_model((12, 12)))]
    rows = list(step_time_rows(models, [10, 20], [1], SMALL))
    assert [(r.model, r.n_candidates, r.threads) for r in rows] == [
        ("a", 10, 1), ("a", 20, 1), ("b", 10, 1), ("b", 20, 1),
    ]  # fmt: skip
    assert get_blas_threads() == before
    assert len(format_row(rows[0])) == len(HEADER)
