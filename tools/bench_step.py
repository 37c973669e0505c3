"""``roach bench``: the control step against the machine's limit and the plain references.

One run measures, for the ``paper`` configuration (2x500 model with random weights, 2000
candidates, horizon 5, M=23) and the ``default`` one (what ``roach run`` ships: the
shipped model, ``configs/default.toml``'s planner, the model's M), at 1 and at 2
threads:
- FLOP per control step of the plain algorithm, counted from the shapes (adaptation:
  forward, backward and the guard's second forward on M rows; planning: N x H network
  evaluations); adapt, plan and whole-step time p50 / p99 over ``--steps`` steps after
  warm-up;
- the machine's sgemm speed on the planner's shapes ([N, 24] @ [24, h1], [N, h1] @
  [h1, h2], [N, h2] @ [h2, 24], timed back to back) and on a 2048-square product;
  ``limit_ms`` = plain FLOP / that speed;
- the same step in PyTorch eager and in plain numpy, and the planner's forward passes
  through onnxruntime (tools/bench_reference.py), with the ratios.

Threads. Each thread count runs in its own child process started with
OMP/OPENBLAS/MKL_NUM_THREADS set, because OpenBLAS, PyTorch's intra-op pool and
onnxruntime each size their pools at start-up; the child also sets them through
``set_blas_threads``, ``torch.set_num_threads`` and the session options.

Memory and start. ``roach sim --clock lockstep`` + ``roach run`` (the shipped model, a
few ticks) in child processes that never import torch: peak RSS of ``roach run`` from
``wait4`` (ru_maxrss) and, polled from ``/proc``, its split into private memory and
mapped files (the shared libraries' clean pages); and the time from its spawn to the
first tick's log record (the first planned command), warm (a second run) and cold (the
installed files dropped from the page cache with ``posix_fadvise`` first).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = REPO / "models" / "grbal.onnx"
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CONFIGS = ("paper", "default")
KEYS = (
    "gflop_per_step", "adapt_p50_ms", "plan_p50_ms", "step_p50_ms", "step_p99_ms",
    "matmul_gflops", "limit_ms", "torch_ms", "numpy_ms", "onnxruntime_plan_ms",
)  # fmt: skip


WARMUP = 3
"""Untimed calls before each timed reference (PyTorch's and onnxruntime's start-up, thread
pools, first touch)."""


def _load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def plain_flop(
    dims: list[int], n: int, horizon: int, m: int, kept: bool = False
) -> tuple[float, float]:
    """FLOP of the plain algorithm: (adaptation step, planning step).

    Adaptation on M rows: forward, backward (weight gradients of every layer, input
    gradients of every layer but the first) and the guard's forward after the step; with
    the steps ``kept`` (mode dyn-eval) the guard also scores the meta-learned weights, one
    more forward. Planning: N x H forward passes on 24-number model inputs.
    """
    macs = sum(a * b for a, b in itertools.pairwise(dims))
    adapt = 2.0 * m * ((5 if kept else 4) * macs - dims[0] * dims[1])
    plan = 2.0 * n * horizon * macs
    return adapt, plan


def _setup(config: str) -> tuple[Any, Any, int, str, float | None]:
    """(model, planner config, M, adaptation mode, step or None) of a configuration name:
    ``paper`` is the published robot's (GrBAL's per-tick reset), ``default`` what
    configs/default.toml ships."""
    from onboard.bench.step_times import random_model
    from onboard.config import load_config
    from onboard.model import load_model
    from onboard.planner import PlannerConfig

    if config == "paper":
        paper = PlannerConfig(n_candidates=2000, horizon=5)
        return random_model((500, 500)), paper, 23, "grbal", None
    cfg = load_config(REPO / "configs" / "default.toml")
    model = load_model(SHIPPED_MODEL)
    a = cfg.adaptation
    m = a.M if a.M is not None else model.meta.M
    return model, cfg.planner, int(m), a.mode, a.inner_lr


def measure(config: str, threads: int, steps: int, ref_repeats: int) -> dict[str, Any]:
    """Every figure of one configuration at one thread count (call in a fresh process)."""
    from onboard.adaptation import Adapter
    from onboard.bench.step_times import times_ms
    from onboard.blas import set_blas_threads
    from onboard.planner import make_planner
    from onboard.rollout import Rollout
    from onboard.tasks import TaskConfig, make_task
    from tools import bench_reference

    set_blas_threads(threads)
    model, pcfg, m, mode, lr = _setup(config)
    dims = [int(d) for d in model.dims]
    n, h = pcfg.n_candidates, pcfg.horizon
    rng = np.random.default_rng(1)
    state = np.zeros(24)
    state[6] = state[8] = state[10] = 1.0
    state[23] = 3.7
    states = state + 0.01 * rng.standard_normal((m + 1, 24))
    actions = rng.uniform(2.0, 9.0, (m, 2))
    low, high, in_flight = np.full(2, 2.0), np.full(2, 9.0), np.array([5.0, 5.0])

    adapter = Adapter(model, mode, M=m, inner_lr=lr)
    planner = make_planner(pcfg, fix_first_action=True)
    rollout = Rollout(model, n, h)
    task = make_task(TaskConfig(), state)
    t_adapt = np.empty(steps)
    t_plan = np.empty(steps)
    for i in range(-5, steps):
        t0 = time.perf_counter_ns()
        adapter.adapt(states, actions)
        t1 = time.perf_counter_ns()
        planner.plan(rollout.bind(adapter.params, state, task.cost), in_flight, low, high)
        t2 = time.perf_counter_ns()
        if i >= 0:
            t_adapt[i], t_plan[i] = (t1 - t0) * 1e-6, (t2 - t1) * 1e-6
    t_step = t_adapt + t_plan
    cand = rng.uniform(2.0, 9.0, (n, h, 2)).astype(np.float32)
    cand[:, 0] = in_flight
    forward_only = rollout.bind(adapter.params, state, lambda ps: ps[:, -1, 0])
    t_forward = times_ms(lambda: forward_only(cand), ref_repeats, WARMUP)

    # sgemm on the planner's shapes, back to back, and on a large square product
    widths = [24, *dims[1:-1], 24]
    mats = [rng.standard_normal((n, widths[0])).astype(np.float32)]
    ws = [rng.standard_normal((a, b)).astype(np.float32) for a, b in itertools.pairwise(widths)]
    outs = [np.empty((n, b), np.float32) for b in widths[1:]]

    def shapes() -> None:
        x = mats[0]
        for w, o in zip(ws, outs, strict=True):
            np.matmul(x, w, out=o)
            x = o

    t_mm = times_ms(shapes, max(ref_repeats, 50), WARMUP)
    mm_flop = 2.0 * n * sum(a * b for a, b in itertools.pairwise(widths))
    sq = rng.standard_normal((2048, 2048)).astype(np.float32)
    sq_out = np.empty_like(sq)
    t_sq = times_ms(lambda: np.matmul(sq, sq, out=sq_out), 10)
    matmul_gflops = mm_flop / (np.median(t_mm) * 1e-3) / 1e9

    adapt_flop, plan_flop = plain_flop(dims, n, h, m, kept=mode == "dyn-eval")
    gflop = (adapt_flop + plan_flop) / 1e9
    args = (model, states, actions, state, n, h, 2.0, 9.0, task.cost)
    t_torch = times_ms(bench_reference.torch_step(*args, threads), ref_repeats, WARMUP)
    t_numpy = times_ms(bench_reference.numpy_step(*args), ref_repeats, WARMUP)
    ort_plan = bench_reference.onnxruntime_plan(model, state, n, h, threads)
    t_ort = times_ms(ort_plan, ref_repeats, WARMUP)
    ort_fed = bench_reference.onnxruntime_fed_plan(model, state, n, h, threads)
    t_ort_fed = times_ms(ort_fed, ref_repeats, WARMUP)
    step_p50 = float(np.median(t_step))
    out = {
        "gflop_per_step": gflop,
        "adapt_gflop": adapt_flop / 1e9,
        "adapt_p50_ms": float(np.median(t_adapt)),
        "adapt_p99_ms": float(np.percentile(t_adapt, 99)),
        "plan_p50_ms": float(np.median(t_plan)),
        "plan_p99_ms": float(np.percentile(t_plan, 99)),
        "plan_forward_p50_ms": float(np.median(t_forward)),
        "step_p50_ms": step_p50,
        "step_p99_ms": float(np.percentile(t_step, 99)),
        "matmul_gflops": float(matmul_gflops),
        "square_matmul_gflops": float(2.0 * 2048**3 / (np.median(t_sq) * 1e-3) / 1e9),
        "limit_ms": gflop / matmul_gflops * 1e3,
        "step_gflops": gflop / step_p50 * 1e3,
        "torch_ms": float(np.median(t_torch)),
        "numpy_ms": float(np.median(t_numpy)),
        "onnxruntime_plan_ms": float(np.median(t_ort)),
        "onnxruntime_fed_plan_ms": float(np.median(t_ort_fed)),
        "n_candidates": n,
        "horizon": h,
        "M": m,
        "mode": mode,
        "dims": dims,
        "steps": steps,
        "load_avg": _load_avg(),
    }
    out["step_over_limit"] = step_p50 / out["limit_ms"]
    out["torch_over_step"] = out["torch_ms"] / step_p50
    out["numpy_over_step"] = out["numpy_ms"] / step_p50
    out["onnxruntime_over_forward"] = out["onnxruntime_plan_ms"] / out["plan_forward_p50_ms"]
    out["onnxruntime_fed_over_forward"] = (
        out["onnxruntime_fed_plan_ms"] / out["plan_forward_p50_ms"]
    )
    out["fraction_of_matmul"] = out["step_gflops"] / matmul_gflops
    return out


# -- memory and time to the first command ----------------------------------------------------


def _drop_page_cache(roots: list[Path]) -> None:
    """Asks the kernel to drop the cached pages of every file under ``roots``."""
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in files:
                try:
                    fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                except OSError:
                    pass
                finally:
                    os.close(fd)


def first_command(cold: bool, ticks: int = 3) -> dict[str, float]:
    """One ``roach run`` against ``roach sim --clock lockstep``: peak RSS (MB) and seconds
    from spawn to the first tick's log record."""
    from firmware_bridge.fake.process import running_fake
    from onboard.logging_mcap import read_log

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp, running_fake("--clock", "lockstep") as (_, port):
        if cold:
            _drop_page_cache([Path(sys.prefix), REPO / "onboard", REPO / "firmware_bridge"])
        log = Path(tmp) / "run.mcap"
        cmd = [sys.executable, "-m", "tools.cli", "run", "--port", port, "--lockstep"]
        cmd += ["--model", str(SHIPPED_MODEL), "--steps", str(ticks), "--quiet", "--log", str(log)]
        t0 = time.time_ns()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        split = {"RssAnon": 0.0, "RssFile": 0.0}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            for key, kb in _rss_split(proc.pid).items():
                split[key] = max(split[key], kb / 1024.0)
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"roach run exited {proc.returncode} in the start-up benchmark")
        first_ns = read_log(log).log_times_ns[0]
    return {
        "rss_peak_mb": usage.ru_maxrss / 1024.0,
        "rss_anon_peak_mb": split["RssAnon"],
        "rss_file_peak_mb": split["RssFile"],
        "first_command_s": (first_ns - t0) * 1e-9,
    }


def _rss_split(pid: int) -> dict[str, int]:
    """Resident kB of a live process: private (``RssAnon``) and mapped files (``RssFile``:
    shared libraries, clean pages the kernel may drop and read again)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # exited between the poll and the read
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


# -- the parent: children per thread count, the table, the JSON ------------------------------


def _child(config: str, threads: int, steps: int, ref_repeats: int) -> dict[str, Any]:
    env = {**os.environ, **{k: str(threads) for k in THREAD_ENV}}
    cmd = [sys.executable, "-m", "tools.bench_step", "--child", config, str(threads)]
    cmd += ["--steps", str(steps), "--ref-repeats", str(ref_repeats)]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"bench child {config}/{threads} failed:\n{res.stderr[-2000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def run_all(steps: int, ref_repeats: int, threads: tuple[int, ...]) -> dict[str, Any]:
    """Every measurement of ``roach bench``; printed as it goes, returned as the JSON."""
    out: dict[str, Any] = {}
    print(
        f"roach bench: control step, {steps} steps after warm-up; references "
        f"{ref_repeats} calls each; one child process per thread count"
    )
    print(_HEADER)
    for config in CONFIGS:
        out[config] = {}
        for t in threads:
            r = _child(config, t, steps, ref_repeats)
            out[config][str(t)] = r
            print(_row(config, t, r))
    print(_FOOTNOTE)
    warm_runs = [first_command(cold=False) for _ in range(2)]
    cold = first_command(cold=True)
    warm = warm_runs[-1]
    out["rss_peak_mb"] = max(r["rss_peak_mb"] for r in [*warm_runs, cold])
    out["rss_peak_warm_mb"] = warm["rss_peak_mb"]
    out["rss_peak_cold_mb"] = cold["rss_peak_mb"]
    out["rss_anon_peak_mb"] = warm["rss_anon_peak_mb"]
    out["rss_file_peak_mb"] = warm["rss_file_peak_mb"]
    out["first_command_warm_s"] = warm["first_command_s"]
    out["first_command_cold_s"] = cold["first_command_s"]
    out["load_avg"] = _load_avg()
    print(
        f"roach run (shipped model, lockstep fake): peak RSS {out['rss_peak_warm_mb']:.0f} MB "
        f"warm (private {out['rss_anon_peak_mb']:.0f} MB, mapped files "
        f"{out['rss_file_peak_mb']:.0f} MB), {out['rss_peak_cold_mb']:.0f} MB cold; first command "
        f"{out['first_command_warm_s']:.2f} s warm, {out['first_command_cold_s']:.2f} s cold "
        f"(load {out['load_avg']})"
    )
    return out


_HEADER = (
    f"{'config':>7} {'thr':>3} {'GFLOP':>6} | {'adapt':>6} {'plan':>6} {'step':>6} "
    f"{'p99':>6} | {'mm GF/s':>7} {'limit':>6} {'x lim':>5} | {'torch':>6} {'x':>4} "
    f"{'numpy':>6} {'x':>4} | {'fwd':>6} {'ort':>6} {'ortfed':>6} | load"
)
_FOOTNOTE = (
    "ms, p50 unless p99; GFLOP of the plain algorithm per step; limit = GFLOP / sgemm speed "
    "on the planner's shapes; x lim = step / limit; torch/numpy x = their time / ours; fwd = "
    "our planner's forward passes, ort = the same through onnxruntime (the model's graph, "
    "weights constant), ortfed = through onnxruntime with the weights fed as inputs"
)


def _row(config: str, t: int, r: dict[str, Any]) -> str:
    return (
        f"{config:>7} {t:>3} {r['gflop_per_step']:>6.2f} | {r['adapt_p50_ms']:>6.2f} "
        f"{r['plan_p50_ms']:>6.2f} {r['step_p50_ms']:>6.2f} {r['step_p99_ms']:>6.2f} | "
        f"{r['matmul_gflops']:>7.1f} {r['limit_ms']:>6.2f} {r['step_over_limit']:>5.2f} | "
        f"{r['torch_ms']:>6.2f} {r['torch_over_step']:>4.2f} {r['numpy_ms']:>6.2f} "
        f"{r['numpy_over_step']:>4.2f} | {r['plan_forward_p50_ms']:>6.2f} "
        f"{r['onnxruntime_plan_ms']:>6.2f} {r['onnxruntime_fed_plan_ms']:>6.2f} | "
        f"{r['load_avg'][0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench_step")
    p.add_argument("--child", nargs=2, metavar=("CONFIG", "THREADS"), required=True)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--ref-repeats", type=int, default=30)
    a = p.parse_args(argv)
    print(json.dumps(measure(a.child[0], int(a.child[1]), a.steps, a.ref_repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
