"""Planner settings compared by control quality per compute (``roach bench onboard``).

Two comparisons:
- ``quality_rows``: closed-loop episodes in which the model itself (meta-learned
  parameters) is the world, so model error is out of the picture and only the optimiser
  differs;
- ``closed_loop_rows``: ``roach sim --clock lockstep`` and ``roach run --lockstep`` as
  subprocesses, one episode per setting, task and seed, reporting what ``roach run``
  prints (step time, tracking). Both are started as the installed command line
  (``python -m tools.cli``, see firmware_bridge/fake/process.py); nothing here imports
  ``tools``.
A setting is ``random:N`` (random shooting, N candidates) or ``cem:ITERSxN``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from firmware_bridge.fake.process import running_fake
from onboard.bench.step_times import prediction_macs_per_row
from onboard.model import LoadedModel
from onboard.planner import Planner, PlannerConfig, make_planner
from onboard.rollout import Rollout
from onboard.tasks import TaskConfig, make_task
from robot_contract.errors import ConfigError

RUN_COMMAND: tuple[str, ...] = ("-m", "tools.cli", "run")
"""Arguments after the interpreter that run ``roach run``."""


@dataclass(frozen=True)
class PlannerComparison:
    """The workload of a comparison."""

    settings: tuple[str, ...] = ("random:2000", "random:1000", "random:500", "random:250",
                                 "cem:3x300", "cem:3x150", "cem:2x100")  # fmt: skip
    """Planner settings, one row each: ``random:N`` or ``cem:ITERSxN``."""
    tasks: tuple[str, ...] = ("straight", "left", "figure8")
    """Task names (onboard.tasks)."""
    episodes: int = 2
    """Episodes (seeds) per setting and task."""
    steps: int = 110
    """Control ticks per episode."""
    horizon: int = 5
    """Planning horizon H."""
    fix_first_action: bool = False
    """Step 0 of every candidate is the command in flight (pipelined timing)."""


def parse_setting(spec: str, horizon: int) -> PlannerConfig:
    """The planner config of ``random:N`` or ``cem:ITERSxN`` (ConfigError otherwise)."""
    try:
        kind, size = spec.split(":")
        if kind == "random":
            n_cand = int(size)
            return PlannerConfig(
                kind="random", n_candidates=n_cand, horizon=horizon, cem_elites=min(50, n_cand)
            )
        iters, n = size.split("x")
        n_cand = int(n)
        return PlannerConfig(
            kind="cem",
            n_candidates=n_cand,
            horizon=horizon,
            cem_iters=int(iters),
            cem_elites=max(1, n_cand // 10),
        )
    except ValueError:
        raise ConfigError(
            f"planner setting {spec!r} is not valid; use random:N or cem:ITERSxN"
        ) from None


# --- with the model as the world


@dataclass(frozen=True)
class TaskQuality:
    """Means over a task's episodes."""

    mean_distance_m: float
    """Mean distance from the path over the episode."""
    progress_m: float
    """Progress along the path at the end."""


@dataclass(frozen=True)
class QualityRow:
    setting: str
    gflop_per_plan: float
    """Batched network evaluations of one plan (all CEM iterations)."""
    plan_p50_ms: float
    tasks: tuple[TaskQuality, ...]
    """One per ``PlannerComparison.tasks``, in order."""


def quality_rows(model: LoadedModel, comp: PlannerComparison) -> Iterator[QualityRow]:
    """Closed-loop episodes with the model as the world, one row per planner setting."""
    fix = comp.fix_first_action
    start = np.zeros(24)
    start[2:] = model.input_mean[:22]
    start[3:6] = 0.0
    start[6:12] = (1.0, 0.0, 1.0, 0.0, 1.0, 0.0)  # level, heading +x
    start[15:19] = (1.0, 0.0, 1.0, 0.0)
    low, high = model.meta.action_low, model.meta.action_high
    macs_row = prediction_macs_per_row(model.dims)
    for spec in comp.settings:
        cfg = parse_setting(spec, comp.horizon)
        batched_steps = cfg.horizon - 1 if fix else cfg.horizon
        gflop = 2.0 * cfg.n_candidates * batched_steps * macs_row * cfg.cem_iters / 1e9
        if cfg.kind == "random":
            gflop /= cfg.cem_iters
        rollout = Rollout(model, cfg.n_candidates, cfg.horizon)
        plan_ms: list[float] = []
        tasks = []
        for task_name in comp.tasks:
            dist, prog = [], []
            for ep in range(comp.episodes):
                planner = make_planner(replace(cfg, seed=ep), fix_first_action=fix)
                d, p = _episode(model, planner, rollout, task_name, start, low, high, comp, plan_ms)
                dist.append(d)
                prog.append(p)
            tasks.append(TaskQuality(float(np.mean(dist)), float(np.mean(prog))))
        rollout.close()
        yield QualityRow(spec, gflop, float(np.median(plan_ms)), tuple(tasks))


def _episode(
    model: LoadedModel,
    planner: Planner,
    rollout: Rollout,
    task_name: str,
    start: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    comp: PlannerComparison,
    plan_ms: list[float],
) -> tuple[float, float]:
    """One episode; appends each plan's time to ``plan_ms``; (mean distance, progress) m."""
    task = make_task(TaskConfig(name=task_name), start)
    state = start.copy()
    in_flight = (low + high) / 2.0
    x = np.empty((1, 24))
    for _ in range(comp.steps):
        task.track(state)
        t0 = time.perf_counter_ns()
        plan = planner.plan(rollout.bind(model.theta, state, task.cost), in_flight, low, high)
        plan_ms.append((time.perf_counter_ns() - t0) * 1e-6)
        applied = in_flight if comp.fix_first_action else plan.action
        x[0, :22] = state[2:]
        x[0, 22:] = applied
        delta = model.predict_delta_norm(x)[0] * model.delta_std + model.delta_mean
        state = state + delta
        # Keep the orientation on the unit circle, as a real measurement would be.
        for c in (6, 8, 10, 15, 17):
            r = float(np.hypot(state[c], state[c + 1])) or 1.0
            state[c : c + 2] /= r
        in_flight = np.asarray(plan.action, np.float64)
    m = task.metrics()
    return m.mean_distance_m, m.progress_m


def quality_title(model: LoadedModel, comp: PlannerComparison) -> str:
    return (
        f"planner quality, model {model.path} as the world: tasks {', '.join(comp.tasks)}, "
        f"{comp.episodes} episode(s) each, {comp.steps} steps, H={comp.horizon}, "
        f"fix_first_action={comp.fix_first_action}"
    )


def quality_header(comp: PlannerComparison) -> str:
    return f"{'setting':>12} | {'GFLOP/plan':>10} {'plan p50 ms':>11} | " + " | ".join(
        f"{t + ' dist m':>14} {'prog m':>6}" for t in comp.tasks
    )


def format_quality_row(row: QualityRow) -> str:
    cells = [f"{t.mean_distance_m:>14.3f} {t.progress_m:>6.2f}" for t in row.tasks]
    return (
        f"{row.setting:>12} | {row.gflop_per_plan:>10.3f} {row.plan_p50_ms:>11.1f} | "
        + " | ".join(cells)
    )


QUALITY_FOOTNOTE = "dist = mean distance from the path over the episode; prog = progress along it"


# --- roach sim + roach run


@dataclass(frozen=True)
class EpisodeFailure:
    """An episode whose ``roach run`` output held no result."""

    task: str
    seed: int
    tail: tuple[str, ...]
    """The last lines ``roach run`` printed."""


@dataclass(frozen=True)
class ClosedLoopRow:
    setting: str
    episodes: np.ndarray
    """[n, 3]: step time p50 (ms), mean distance (m), progress (m) of each episode with a
    result; n may be 0."""
    failures: tuple[EpisodeFailure, ...] = field(default=())


_NUM = r"([0-9.]+)"


def closed_loop_rows(model_path: str | Path, comp: PlannerComparison) -> Iterator[ClosedLoopRow]:
    """One ``roach run`` episode against ``roach sim`` per setting, task and seed (seeds
    1..episodes); one row per setting."""
    timing = "pipelined" if comp.fix_first_action else "immediate"  # [loop] command_timing
    with tempfile.TemporaryDirectory(prefix="roach-bench-") as tmp:
        for spec in comp.settings:
            cfg = parse_setting(spec, comp.horizon)
            conf = Path(tmp) / "planner.toml"
            conf.write_text(
                f'[planner]\nkind = "{cfg.kind}"\nn_candidates = {cfg.n_candidates}\n'
                f"horizon = {cfg.horizon}\ncem_iters = {cfg.cem_iters}\n"
                f"cem_elites = {cfg.cem_elites}\n"
                f'[loop]\ncommand_timing = "{timing}"\n'
            )
            rows: list[tuple[float, float, float]] = []
            failures: list[EpisodeFailure] = []
            for task in comp.tasks:
                for seed in range(1, comp.episodes + 1):
                    fake = ("--clock", "lockstep", "--seed", str(seed))
                    with running_fake(*fake, stderr=subprocess.DEVNULL) as (_sim, port):
                        out = subprocess.run(
                            [sys.executable, *RUN_COMMAND, "--port", port,
                             "--lockstep", "--model", str(model_path), "--config", str(conf),
                             "--task", task, "--steps", str(comp.steps),
                             "--log", str(Path(tmp) / "run.mcap")],
                            capture_output=True, text=True, timeout=600,
                        )  # fmt: skip
                    text = out.stdout + out.stderr
                    step = re.search(r"step time.*?p50 " + _NUM + " ms", text)
                    dist = re.search(r"mean distance " + _NUM + " m", text)
                    prog = re.search(r"progress " + _NUM + " m", text)
                    if not (step and dist and prog):
                        tail = tuple(text.strip().splitlines()[-5:])
                        failures.append(EpisodeFailure(task, seed, tail))
                        continue
                    rows.append((float(step[1]), float(dist[1]), float(prog[1])))
            yield ClosedLoopRow(spec, np.asarray(rows).reshape(-1, 3), tuple(failures))


def closed_loop_title(model_path: str | Path, comp: PlannerComparison) -> str:
    return (
        f"closed loop: roach sim --clock lockstep + roach run --lockstep, model {model_path}, "
        f"tasks {', '.join(comp.tasks)}, seeds 1..{comp.episodes}, {comp.steps} steps, "
        f"fix_first_action={comp.fix_first_action}"
    )


CLOSED_LOOP_HEADER = (
    f"{'setting':>12} | {'step p50 ms':>11} | {'mean dist cm':>12} {'max':>5} | {'progress m':>10}"
)


def format_closed_loop_row(row: ClosedLoopRow) -> list[str]:
    """The failed episodes' lines, then the means line (none without a result)."""
    lines = []
    for f in row.failures:
        lines.append(f"{row.setting:>12} | {f.task} seed {f.seed}: no result; roach run said:")
        lines.append("    " + "\n    ".join(f.tail))
    if len(row.episodes):
        a = row.episodes
        lines.append(
            f"{row.setting:>12} | {a[:, 0].mean():>11.1f} | {100 * a[:, 1].mean():>12.1f} "
            f"{100 * a[:, 1].max():>5.1f} | {a[:, 2].mean():>10.2f}"
        )
    return lines


CLOSED_LOOP_FOOTNOTE = "means over tasks x seeds; dist = mean distance from the path per episode"
