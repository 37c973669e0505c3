"""Planner settings compared by control quality per compute (``roach bench onboard``).

Two comparisons, both driven from tools/cmd_bench_onboard.py:
- ``quality``: closed-loop episodes in which the model itself (meta-learned parameters)
  is the world, so model error is out of the picture and only the optimiser differs;
- ``closed_loop``: ``roach sim --clock lockstep`` and ``roach run --lockstep`` as
  subprocesses, one episode per setting, task and seed, reporting what ``roach run``
  prints (step time, tracking).
A setting is ``random:N`` (random shooting, N candidates) or ``cem:ITERSxN``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from onboard.model import LoadedModel
from onboard.planner import PlannerConfig, make_planner
from onboard.rollout import Rollout
from onboard.tasks import make_task
from robot_contract.errors import ConfigError
from tools.fake_process import running_fake


def parse_setting(spec: str, horizon: int, fix: bool) -> PlannerConfig:
    try:
        kind, size = spec.split(":")
        if kind == "random":
            n_cand = int(size)
            return PlannerConfig(
                kind="random",
                n_candidates=n_cand,
                horizon=horizon,
                cem_elites=min(50, n_cand),
                fix_first_action=fix,
            )
        iters, n = size.split("x")
        n_cand = int(n)
        return PlannerConfig(
            kind="cem",
            n_candidates=n_cand,
            horizon=horizon,
            cem_iters=int(iters),
            cem_elites=max(1, n_cand // 10),
            fix_first_action=fix,
        )
    except ValueError:
        raise ConfigError(
            f"planner setting {spec!r} is not valid; use random:N or cem:ITERSxN"
        ) from None


def quality(model: LoadedModel, opts: argparse.Namespace) -> int:
    """Closed-loop episodes with the model as the world, one row per planner setting."""
    fix = bool(opts.fix_first_action)
    start = np.zeros(24)
    start[2:] = model.input_mean[:22]
    start[3:6] = 0.0
    start[6:12] = (1.0, 0.0, 1.0, 0.0, 1.0, 0.0)  # level, heading +x
    start[15:19] = (1.0, 0.0, 1.0, 0.0)
    low, high = model.meta.action_low, model.meta.action_high
    dims = [int(d) for d in model.dims]
    macs_row = 26 * dims[1] + sum(dims[i] * dims[i + 1] for i in range(1, len(dims) - 1))
    print(
        f"planner quality, model {model.path} as the world: tasks {', '.join(opts.tasks)}, "
        f"{opts.episodes} episode(s) each, {opts.steps} steps, H={opts.horizon}, "
        f"fix_first_action={fix}"
    )
    header = f"{'setting':>12} | {'GFLOP/plan':>10} {'plan p50 ms':>11} | " + " | ".join(
        f"{t + ' dist m':>14} {'prog m':>6}" for t in opts.tasks
    )
    print(header)
    print("-" * len(header))
    for spec in opts.settings:
        cfg = parse_setting(spec, opts.horizon, fix)
        batched_steps = cfg.horizon - 1 if fix else cfg.horizon
        gflop = 2.0 * cfg.n_candidates * batched_steps * macs_row * cfg.cem_iters / 1e9
        if cfg.kind == "random":
            gflop /= cfg.cem_iters
        rollout = Rollout(model, cfg.n_candidates, cfg.horizon)
        plan_ms: list[float] = []
        cells = []
        for task_name in opts.tasks:
            dist, prog = [], []
            for ep in range(opts.episodes):
                planner = make_planner(
                    PlannerConfig(**{**cfg.__dict__, "seed": ep})  # type: ignore[arg-type]
                )
                d, p = _episode(model, planner, rollout, task_name, start, low, high, opts, plan_ms)
                dist.append(d)
                prog.append(p)
            cells.append(f"{np.mean(dist):>14.3f} {np.mean(prog):>6.2f}")
        print(f"{spec:>12} | {gflop:>10.3f} {np.median(plan_ms):>11.1f} | " + " | ".join(cells))
    print("dist = mean distance from the path over the episode; prog = progress along it")
    return 0


def _episode(
    model: LoadedModel,
    planner: object,
    rollout: Rollout,
    task_name: str,
    start: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    opts: argparse.Namespace,
    plan_ms: list[float],
) -> tuple[float, float]:
    task = make_task(task_name, start)
    state = start.copy()
    in_flight = (low + high) / 2.0
    x = np.empty((1, 24))
    for _ in range(opts.steps):
        task.track(state)
        t0 = time.perf_counter_ns()
        plan = planner.plan(  # type: ignore[attr-defined]
            rollout.bind(model.theta, state, task.cost), in_flight, low, high
        )
        plan_ms.append((time.perf_counter_ns() - t0) * 1e-6)
        applied = in_flight if opts.fix_first_action else plan.action
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


def closed_loop(opts: argparse.Namespace) -> int:
    """One ``roach run`` episode against ``roach sim`` per setting, task and seed."""
    fix = bool(opts.fix_first_action)
    print(
        f"closed loop: roach sim --clock lockstep + roach run --lockstep, model {opts.model}, "
        f"tasks {', '.join(opts.tasks)}, seeds 1..{opts.episodes}, {opts.steps} steps, "
        f"fix_first_action={fix}"
    )
    head = f"{'setting':>12} | {'step p50 ms':>11} | {'mean dist cm':>12} {'max':>5} | "
    print(head + f"{'progress m':>10}")
    num = r"([0-9.]+)"
    with tempfile.TemporaryDirectory(prefix="roach-bench-") as tmp:
        for spec in opts.settings:
            cfg = parse_setting(spec, opts.horizon, fix)
            conf = Path(tmp) / "planner.toml"
            conf.write_text(
                f'[planner]\nkind = "{cfg.kind}"\nn_candidates = {cfg.n_candidates}\n'
                f"horizon = {cfg.horizon}\ncem_iters = {cfg.cem_iters}\n"
                f"cem_elites = {cfg.cem_elites}\nfix_first_action = {str(fix).lower()}\n"
            )
            rows: list[tuple[float, float, float]] = []
            for task in opts.tasks:
                for seed in range(1, opts.episodes + 1):
                    fake = ("--clock", "lockstep", "--seed", str(seed))
                    with running_fake(*fake, stderr=subprocess.DEVNULL) as (_sim, port):
                        out = subprocess.run(
                            [sys.executable, "-m", "tools.cli", "run", "--port", port,
                             "--lockstep", "--model", str(opts.model), "--config", str(conf),
                             "--task", task, "--steps", str(opts.steps),
                             "--log", str(Path(tmp) / "run.mcap")],
                            capture_output=True, text=True, timeout=600,
                        )  # fmt: skip
                    text = out.stdout + out.stderr
                    step = re.search(r"step time.*?p50 " + num + " ms", text)
                    dist = re.search(r"mean distance " + num + " m", text)
                    prog = re.search(r"progress " + num + " m", text)
                    if not (step and dist and prog):
                        print(f"{spec:>12} | {task} seed {seed}: no result; roach run said:")
                        print("    " + "\n    ".join(text.strip().splitlines()[-5:]))
                        continue
                    rows.append((float(step[1]), float(dist[1]), float(prog[1])))
            if rows:
                a = np.asarray(rows)
                print(
                    f"{spec:>12} | {a[:, 0].mean():>11.1f} | {100 * a[:, 1].mean():>12.1f} "
                    f"{100 * a[:, 1].max():>5.1f} | {a[:, 2].mean():>10.2f}"
                )
    print("means over tasks x seeds; dist = mean distance from the path per episode")
    return 0
