"""Resource bounds of a controller configuration: every size checked before anything is
allocated, and the measured step time checked against the control period.

``check_sizes`` refuses, with one line naming the key and what to reduce, a configuration
whose sizes (candidates, horizon, CEM iterations, the adaptation window, also the model's
own ``roach.M``, the task scale) are beyond hard limits or whose planning buffers would
not fit ``[resources] max_memory_mb``. ``check_step_time`` runs after the warm-up
(onboard/warmup.py): it times ``warmup_steps`` adapt + plan steps on dummy data
and refuses a configuration whose p99 exceeds ``step_budget_fraction`` of the period,
since a step that does not fit the period trips the board's command timeout. The step is
timed in CPU time of the controller's thread (``time.thread_time``; BLAS runs on that
thread with ``blas_threads = 1``): what the configuration costs on this computer, not how
busy other processes keep it (that shows at run time as overruns).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_contract.errors import ConfigError

MAX_CANDIDATES = 1_000_000
MAX_HORIZON = 200
MAX_CEM_ITERS = 100
MAX_WINDOW = 1000
"""Largest adaptation window M (the config's or the model's ``roach.M``)."""
MAX_TASK_SCALE_M = 1000.0


def _rng(lo: float, hi: float, doc: str) -> dict[str, Any]:
    return {"range": (lo, hi), "doc": doc}


@dataclass(frozen=True)
class ResourceConfig:
    """Memory and time budgets (the ``[resources]`` table of the controller config)."""

    max_memory_mb: float = field(default=512.0, metadata=_rng(1.0, 1e6, "MB"))
    """Planning and adaptation buffers above this estimate are refused at start."""
    step_budget_fraction: float = field(default=0.8, metadata=_rng(0.05, 1.0, "of the period"))
    """The warm-up step time's p99 must fit this fraction of the control period
    (the rest is reading, logging and the link)."""
    warmup_steps: int = field(default=30, metadata=_rng(3, 10_000, "steps"))
    """Adapt + plan steps timed at start (realtime clock only)."""


def buffer_bytes(n_candidates: int, horizon: int, widths: list[int], window: int) -> int:
    """Estimated bytes of the per-tick buffers: rollout states [N, H+1, 24] f32, the model
    input [N, 25] f32, the layer activations [N, width + 1] f32 per layer and the ReLU's
    zeros, candidates [N, H, 2] f32 (twice for CEM's scratch) and costs [N] f64, the task
    cost's f64 work per predicted point (nine numbers and three per path segment it is
    measured against, counted as 16), plus the adaptation window's scratch [M, width] f32
    x 4."""
    n, h = int(n_candidates), int(horizon)
    layers = sum(w + 1 for w in widths) * 4 + (max(widths) + 1) * 4
    per_cand = (h + 1) * 24 * 4 + 25 * 4 + layers + 2 * h * 2 * 4 + 3 * 8 + h * (9 + 3 * 16) * 8
    return n * per_cand + int(window) * (sum(widths) + 50) * 4 * 4


def check_sizes(cfg: Any, model: Any) -> None:
    """ConfigError (one line) if a size of ``cfg`` (onboard.config.ControllerConfig) or of
    ``model`` (onboard.model.LoadedModel) is beyond its limit or the buffers would not fit."""
    p, src = cfg.planner, cfg.source
    for key, value, limit in (
        ("n_candidates", p.n_candidates, MAX_CANDIDATES),
        ("horizon", p.horizon, MAX_HORIZON),
        ("cem_iters", p.cem_iters, MAX_CEM_ITERS),
    ):
        if value > limit:
            raise ConfigError(f"{src}: [planner] {key} = {value}: too large, valid 1 to {limit}")
    window = cfg.adaptation.M if cfg.adaptation.M is not None else model.meta.M
    if not 1 <= window <= MAX_WINDOW:
        where = "[adaptation] M" if cfg.adaptation.M is not None else f"model {model.path} roach.M"
        raise ConfigError(f"{src}: {where} = {window}: too large, valid 1 to {MAX_WINDOW}")
    scale = cfg.task.scale_m
    if not (math.isfinite(scale) and 0 < scale <= MAX_TASK_SCALE_M):
        raise ConfigError(f"{src}: [task] scale_m = {scale}: valid above 0 to {MAX_TASK_SCALE_M} m")
    widths = [int(w) for w in model.dims[1:]]
    need_mb = buffer_bytes(p.n_candidates, p.horizon, widths, window) / 1e6
    budget = cfg.resources.max_memory_mb
    if need_mb > budget:
        raise ConfigError(
            f"{src}: [planner] n_candidates = {p.n_candidates} x horizon = {p.horizon} needs "
            f"about {need_mb:.0f} MB of buffers, over [resources] max_memory_mb = {budget:g}; "
            "reduce n_candidates or horizon"
        )


def time_steps(adapter: Any, objective: Any, planner: Any, cfg: Any, n: int) -> np.ndarray:
    """CPU seconds of ``n`` adapt + plan steps on dummy data near the model's input mean (the
    objective is left as it was). Stops early once two steps have exceeded the budget:
    the p99 of the rest cannot fit then. The planner timed is a copy: the controller's own
    planner keeps its random state and warm start, so a run's commands stay the ones
    ``roach replay --check`` reproduces."""
    planner = copy.deepcopy(planner)
    model = adapter.model
    m = adapter.M
    rng = np.random.default_rng(1)
    states = np.zeros((m + 1, 24))
    states[:, 2:] = model.input_mean[:22] + 1e-3 * rng.standard_normal((m + 1, 22))
    states[:, 10], states[:, 11] = 1.0, 0.0
    mid = 0.5 * (cfg.loop.action_low_rev_s + cfg.loop.action_high_rev_s)
    actions = np.full((m, 2), mid)
    low, high = np.full(2, cfg.loop.action_low_rev_s), np.full(2, cfg.loop.action_high_rev_s)
    budget_s = cfg.resources.step_budget_fraction / cfg.loop.rate_hz
    task = objective.task
    times: list[float] = []
    over = 0
    try:
        for _ in range(n):
            t0 = time.thread_time()
            adapter.adapt(states, actions)
            cost = objective.rollout_cost(states[-1], adapter.params)
            planner.plan(cost, actions[0], low, high)
            times.append(time.thread_time() - t0)
            over += times[-1] > budget_s
            if over >= 2:
                break
    finally:
        objective.task = task
        adapter.reset()
    return np.asarray(times)


def check_step_time(times_s: np.ndarray, cfg: Any) -> float:
    """The p99 of ``times_s``, ms; ConfigError (one line, saying what to reduce) if it
    does not fit ``step_budget_fraction`` of the control period."""
    period_ms = 1e3 / cfg.loop.rate_hz
    budget_ms = cfg.resources.step_budget_fraction * period_ms
    p99 = float(np.percentile(np.asarray(times_s) * 1e3, 99))
    if p99 > budget_ms:
        p = cfg.planner
        raise ConfigError(
            f"{cfg.source}: step time (CPU) p99 {p99:.1f} ms over {len(times_s)} warm-up "
            f"steps does not fit {budget_ms:.0f} ms ({cfg.resources.step_budget_fraction:g} of the "
            f"{period_ms:.0f} ms period); reduce [planner] n_candidates (now {p.n_candidates})"
            f", horizon (now {p.horizon})"
            + (f" or cem_iters (now {p.cem_iters})" if p.kind == "cem" else "")
        )
    return p99
