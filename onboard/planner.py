"""Sampling-based trajectory optimisers (random shooting, as published, and CEM) and the
one wrapper that turns them into the controller's planner.

The optimisers know nothing about models, tasks or time: ``optimize(cost, x0, low,
high)`` gets ``cost``, a function from candidate action sequences [N, H, 2] to costs [N]
(lower is better; built by onboard/rollout.py around the model, its current parameters,
the current state and the task), an initial guess ``x0`` [H, 2] and per-step bounds
``low``/``high`` [H, 2], and returns the best sequence it found.

``Planner`` owns what depends on the control loop:
- the command in flight. With pipelined command timing (onboard/command.py, the
  published robot) the command planned at the previous tick is sent at the start of
  this tick and applies over the first predicted step, so step 0 of every candidate is
  fixed to it: its bounds are set to that command (low = high), and the command to send
  next is ``best_sequence[1]``; the horizon must be >= 2. With immediate timing every
  step is free and the command to send is ``best_sequence[0]``. Either way
  ``PlanResult.action`` is the command to send;
- the warm start: the next plan starts from this plan's sampling mean shifted by one
  step (its last action repeated). Random shooting ignores it; CEM starts from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_contract.errors import ConfigError

RolloutCost = Callable[[np.ndarray], np.ndarray]
"""actions [N, H, 2] float32 -> costs [N] (lower is better)."""

PLANNER_KINDS: tuple[str, ...] = ("random", "cem")


@dataclass(frozen=True)
class PlannerConfig:
    """Planner settings (the ``[planner]`` table of the controller config)."""

    kind: str = "random"
    """``random`` (random shooting, the published planner) or ``cem``."""
    n_candidates: int = 166
    """Action sequences sampled per iteration (the published robot used 2000)."""
    horizon: int = 7
    """Steps per sequence, including the fixed first step (the command in flight) with
    pipelined command timing, which needs >= 2."""
    cem_iters: int = 3
    """CEM iterations per control step (N candidates each)."""
    cem_elites: int = 50
    """CEM elite set size."""
    cem_alpha: float = 0.1
    """CEM smoothing: new mean/std = alpha * old + (1 - alpha) * elite statistics."""
    cem_init_std_frac: float = 0.5
    """CEM initial std as a fraction of the action range (high - low)."""
    seed: int = 0
    """Seed of the planner's random generator."""

    def __post_init__(self) -> None:
        if self.kind not in PLANNER_KINDS:
            raise ConfigError(
                f"planner kind {self.kind!r} is not valid; valid: {', '.join(PLANNER_KINDS)}"
            )
        if self.n_candidates < 1:
            raise ConfigError(f"planner n_candidates={self.n_candidates} must be >= 1")
        if self.horizon < 1:
            raise ConfigError(f"planner horizon={self.horizon} must be >= 1")
        if self.cem_iters < 1:
            raise ConfigError(f"planner cem_iters={self.cem_iters} must be >= 1")
        if self.cem_elites < 1 or (self.kind == "cem" and self.cem_elites > self.n_candidates):
            raise ConfigError(
                f"planner cem_elites={self.cem_elites} must be in "
                f"1..n_candidates={self.n_candidates}"
            )
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"planner seed={self.seed} must be in 0..2**63-1")
        if not 0.0 <= self.cem_alpha < 1.0:
            raise ConfigError(f"planner cem_alpha={self.cem_alpha} must be in [0, 1)")
        if not self.cem_init_std_frac > 0.0:
            raise ConfigError(f"planner cem_init_std_frac={self.cem_init_std_frac} must be > 0")


@dataclass(frozen=True)
class Solution:
    """What an optimiser found."""

    sequence: np.ndarray
    """[H, 2] float32: the lowest-cost sequence (meaningless when ``cost`` is inf)."""
    cost: float
    """Its cost; inf when no candidate had a finite cost."""
    mean: np.ndarray
    """[H, 2] float32: the final sampling mean (CEM), or ``sequence`` (random shooting);
    the next plan's warm start is this, shifted by one step."""


@dataclass(frozen=True)
class PlanResult:
    """The chosen command and the sequence it came from."""

    action: np.ndarray
    """[2] float32, rev/s: the command to send (``best_sequence[1]`` with the first step
    fixed, else ``best_sequence[0]``)."""
    best_cost: float
    """Lowest cost found; inf when no candidate had a finite cost (the sequence then
    holds the command in flight, and the controller must stop rather than send it)."""
    best_sequence: np.ndarray
    """[H, 2] float32; row 0 is the command in flight when the first step is fixed."""


class RandomShooting:
    """N sequences uniform within the bounds; keep the best. ``x0`` is not used."""

    def __init__(self, cfg: PlannerConfig) -> None:
        self.cfg = cfg
        self._rng = np.random.default_rng(cfg.seed)
        self._cand = np.empty((cfg.n_candidates, cfg.horizon, 2), np.float32)

    def optimize(
        self, cost: RolloutCost, x0: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> Solution:
        """One batch of N uniform samples in [low, high] ([H, 2] each)."""
        cand = self._cand
        self._rng.random(out=cand, dtype=np.float32)
        cand *= high - low
        cand += low
        costs = np.asarray(cost(cand))
        costs = np.where(np.isfinite(costs), costs, np.inf)
        i = int(np.argmin(costs))
        seq = cand[i].copy()
        return Solution(sequence=seq, cost=float(costs[i]), mean=seq)


class CEM:
    """Cross-entropy method: ``cem_iters`` rounds of sample / score / refit from ``x0``."""

    def __init__(self, cfg: PlannerConfig) -> None:
        self.cfg = cfg
        self._rng = np.random.default_rng(cfg.seed)
        self._cand = np.empty((cfg.n_candidates, cfg.horizon, 2), np.float32)
        self.last_iteration_costs: list[float] = []
        """Best cost after each iteration of the last call (non-increasing)."""

    def optimize(
        self, cost: RolloutCost, x0: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> Solution:
        """Returns the best sequence seen over all iterations."""
        cfg = self.cfg
        mean = np.asarray(x0, np.float32).copy()
        std = (cfg.cem_init_std_frac * (high - low)).astype(np.float32)
        cand = self._cand
        best_seq = np.empty((cfg.horizon, 2), np.float32)
        best_cost = np.inf
        self.last_iteration_costs = []
        for _ in range(cfg.cem_iters):
            self._rng.standard_normal(out=cand, dtype=np.float32)
            cand *= std
            cand += mean
            np.clip(cand, low, high, out=cand)
            costs = np.asarray(cost(cand), np.float64)
            costs = np.where(np.isfinite(costs), costs, np.inf)
            i_best = int(np.argmin(costs))
            if costs[i_best] < best_cost:
                best_cost = float(costs[i_best])
                best_seq[:] = cand[i_best]
            self.last_iteration_costs.append(best_cost)
            elites = cand[np.argpartition(costs, cfg.cem_elites - 1)[: cfg.cem_elites]]
            mean = cfg.cem_alpha * mean + (1 - cfg.cem_alpha) * elites.mean(axis=0)
            std = cfg.cem_alpha * std + (1 - cfg.cem_alpha) * elites.std(axis=0)
        return Solution(sequence=best_seq, cost=best_cost, mean=mean.astype(np.float32))


Optimizer = RandomShooting | CEM


class Planner:
    """An optimiser bound to the control loop: the command in flight and the warm start.

    Args:
        optimizer: RandomShooting or CEM (its ``cfg.horizon`` is the plan's horizon).
        fix_first_action: step 0 of every candidate is the command in flight and the
            command to send is step 1 (pipelined timing); False: every step free, send
            step 0 (immediate timing).
    """

    def __init__(self, optimizer: Optimizer, fix_first_action: bool = True) -> None:
        horizon = optimizer.cfg.horizon
        if fix_first_action and horizon < 2:
            raise ConfigError(
                f"planner horizon={horizon} must be >= 2 with pipelined command timing "
                "(step 0 is the command in flight)"
            )
        self.optimizer = optimizer
        self.fix_first_action = fix_first_action
        self.horizon = horizon
        self._low = np.empty((horizon, 2), np.float32)
        self._high = np.empty((horizon, 2), np.float32)
        self._warm = np.empty((horizon, 2), np.float32)
        self._has_warm = False

    def reset(self) -> None:
        """Forget the previous plan (start of an episode)."""
        self._has_warm = False

    def plan(
        self,
        cost: RolloutCost,
        action_in_flight: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
    ) -> PlanResult:
        """One planning step: bounds low/high [2] rev/s, the command in flight [2]."""
        lo, hi = self._low, self._high
        lo[:] = np.asarray(low, np.float32)
        hi[:] = np.asarray(high, np.float32)
        hold = np.clip(np.asarray(action_in_flight, np.float32), lo[0], hi[0])
        if self.fix_first_action:
            lo[0] = hi[0] = hold
        if not self._has_warm:
            np.add(lo, hi, out=self._warm)
            self._warm *= 0.5
        sol = self.optimizer.optimize(cost, self._warm, lo, hi)
        self._warm[:-1] = sol.mean[1:]  # shift by one step, repeat the last action
        self._warm[-1] = sol.mean[-1]
        self._has_warm = True
        seq = sol.sequence
        if not math.isfinite(sol.cost):
            # No candidate had a finite cost: there is no best, and no random candidate
            # is passed off as one. The caller stops.
            seq = np.empty((self.horizon, 2), np.float32)
            seq[:] = hold
        i_send = 1 if self.fix_first_action else 0
        return PlanResult(action=seq[i_send].copy(), best_cost=float(sol.cost), best_sequence=seq)


def make_optimizer(cfg: PlannerConfig) -> Optimizer:
    """The optimiser named by ``cfg.kind``."""
    return RandomShooting(cfg) if cfg.kind == "random" else CEM(cfg)


def make_planner(cfg: PlannerConfig, fix_first_action: bool = True) -> Planner:
    """The planner of ``cfg.kind``; ``fix_first_action`` as pipelined command timing wants."""
    return Planner(make_optimizer(cfg), fix_first_action)
