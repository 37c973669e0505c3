"""Sampling-based trajectory optimisers: random shooting (as published) and CEM.

The optimisers know nothing about models or tasks: they get ``rollout_cost``, a
function from candidate action sequences [N, H, 2] to costs [N] (lower is better),
built by onboard/rollout.py around the model, its current parameters, the current state
and the task.

The command in flight. While the controller measures the state and plans, the robot
keeps executing the command sent at the previous tick; the new command only takes
effect at about the next tick. So over the first predicted step the applied action is
known, and every candidate's first action is fixed to it (as on the published robot).
The first action the planner chooses is therefore ``best_sequence[1]``, and that is the
command to send (``PlanResult.action``). The horizon must be >= 2.

``fix_first_action=False`` is for a robot that applies a command over the very period
that follows the state it was planned from (e.g. a simulator stepped in lockstep with
the controller, or the model trained on transitions (s_k, command sent at tick k,
s_k+1)): every step is free and the command to send is ``best_sequence[0]``. Either way
``PlanResult.action`` is the command to send.

CEM warm start: the sampling mean starts from the previous plan shifted by one step
(its last action repeated), the standard deviation from a fixed fraction of the range.
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
    n_candidates: int = 1000
    """Action sequences sampled per iteration (the published robot used 2000)."""
    horizon: int = 5
    """Steps per sequence, including the fixed first step (the command in flight); >= 2."""
    fix_first_action: bool = True
    """Fix step 0 of every candidate to the command in flight and send step 1 (published
    robot, one-period command delay); False: all steps free, send step 0."""
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
        if self.horizon < (2 if self.fix_first_action else 1):
            raise ConfigError(
                f"planner horizon={self.horizon} must be >= 2 (step 1 is the command in flight)"
            )
        if self.cem_iters < 1:
            raise ConfigError(f"planner cem_iters={self.cem_iters} must be >= 1")
        if self.cem_elites < 1 or (self.kind == "cem" and self.cem_elites > self.n_candidates):
            raise ConfigError(
                f"planner cem_elites={self.cem_elites} must be in "
                f"1..n_candidates={self.n_candidates}"
            )
        if not 0.0 <= self.cem_alpha < 1.0:
            raise ConfigError(f"planner cem_alpha={self.cem_alpha} must be in [0, 1)")
        if not self.cem_init_std_frac > 0.0:
            raise ConfigError(f"planner cem_init_std_frac={self.cem_init_std_frac} must be > 0")


@dataclass(frozen=True)
class PlanResult:
    """The chosen command and the sequence it came from."""

    action: np.ndarray
    """[2] float32, rev/s: the command to send now (``best_sequence[1]``, or
    ``best_sequence[0]`` with ``fix_first_action=False``)."""
    best_cost: float
    """Lowest cost found; inf when no candidate had a finite cost (the sequence then
    holds the command in flight, and the controller must stop rather than send it)."""
    best_sequence: np.ndarray
    """[H, 2] float32; row 0 is the command in flight when ``fix_first_action``."""


class RandomShooting:
    """N sequences uniform within the bounds, first action fixed; keep the best."""

    def __init__(self, cfg: PlannerConfig) -> None:
        self.cfg = cfg
        self._rng = np.random.default_rng(cfg.seed)
        self._cand = np.empty((cfg.n_candidates, cfg.horizon, 2), np.float32)

    def reset(self) -> None:
        """Start of an episode (no state to clear; kept for a uniform interface)."""

    def plan(
        self,
        rollout_cost: RolloutCost,
        action_in_flight: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
    ) -> PlanResult:
        """One planning step; see the module docstring for the command-in-flight rule."""
        cand = self._cand
        lo = np.asarray(low, np.float32)
        hi = np.asarray(high, np.float32)
        self._rng.random(out=cand, dtype=np.float32)
        cand *= hi - lo
        cand += lo
        if self.cfg.fix_first_action:
            cand[:, 0, :] = np.clip(np.asarray(action_in_flight, np.float32), lo, hi)
        costs = np.asarray(rollout_cost(cand))
        return _best(cand, costs, 1 if self.cfg.fix_first_action else 0, cand[0, 0])


class CEM:
    """Cross-entropy method with the first action fixed and a shifted warm start."""

    def __init__(self, cfg: PlannerConfig) -> None:
        self.cfg = cfg
        self._rng = np.random.default_rng(cfg.seed)
        self._cand = np.empty((cfg.n_candidates, cfg.horizon, 2), np.float32)
        self._prev_mean: np.ndarray | None = None
        self.last_iteration_costs: list[float] = []
        """Best cost after each iteration of the last plan (non-increasing)."""

    def reset(self) -> None:
        """Forget the previous plan (start of an episode)."""
        self._prev_mean = None

    def plan(
        self,
        rollout_cost: RolloutCost,
        action_in_flight: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
    ) -> PlanResult:
        """cem_iters rounds of sample / score / refit; returns the best sequence seen."""
        cfg = self.cfg
        h = cfg.horizon
        lo = np.asarray(low, np.float32)
        hi = np.asarray(high, np.float32)
        a0 = np.clip(np.asarray(action_in_flight, np.float32), lo, hi)
        if self._prev_mean is None:
            mean = np.broadcast_to((lo + hi) / 2, (h, 2)).astype(np.float32)
        else:
            mean = np.concatenate([self._prev_mean[1:], self._prev_mean[-1:]], axis=0)
        std = np.broadcast_to(cfg.cem_init_std_frac * (hi - lo), (h, 2)).astype(np.float32)
        cand = self._cand
        best_seq = np.empty((h, 2), np.float32)
        best_cost = np.inf
        self.last_iteration_costs = []
        for _ in range(cfg.cem_iters):
            self._rng.standard_normal(out=cand, dtype=np.float32)
            cand *= std
            cand += mean
            np.clip(cand, lo, hi, out=cand)
            if cfg.fix_first_action:
                cand[:, 0, :] = a0
            costs = np.asarray(rollout_cost(cand), np.float64)
            costs = np.where(np.isfinite(costs), costs, np.inf)
            i_best = int(np.argmin(costs))
            if costs[i_best] < best_cost:
                best_cost = float(costs[i_best])
                best_seq[:] = cand[i_best]
            self.last_iteration_costs.append(best_cost)
            elites = cand[np.argpartition(costs, cfg.cem_elites - 1)[: cfg.cem_elites]]
            mean = cfg.cem_alpha * mean + (1 - cfg.cem_alpha) * elites.mean(axis=0)
            std = cfg.cem_alpha * std + (1 - cfg.cem_alpha) * elites.std(axis=0)
        if not np.isfinite(best_cost):
            best_seq[:] = a0
        self._prev_mean = mean.astype(np.float32)
        i_send = 1 if cfg.fix_first_action else 0
        return PlanResult(
            action=best_seq[i_send].copy(), best_cost=best_cost, best_sequence=best_seq
        )


Planner = RandomShooting | CEM


def make_planner(cfg: PlannerConfig) -> Planner:
    """The planner named by ``cfg.kind``."""
    return RandomShooting(cfg) if cfg.kind == "random" else CEM(cfg)


def _best(cand: np.ndarray, costs: np.ndarray, i_send: int, hold: np.ndarray) -> PlanResult:
    """The lowest finite cost's sequence. If no cost is finite there is no best: the cost
    is inf and the sequence holds ``hold`` [2] (no random candidate is passed off as
    best); the caller stops."""
    costs = np.where(np.isfinite(costs), costs, np.inf)
    i = int(np.argmin(costs))
    if not np.isfinite(costs[i]):
        seq = np.empty_like(cand[0])
        seq[:] = hold
        return PlanResult(action=seq[i_send].copy(), best_cost=math.inf, best_sequence=seq)
    seq = cand[i].copy()
    return PlanResult(action=seq[i_send].copy(), best_cost=float(costs[i]), best_sequence=seq)
