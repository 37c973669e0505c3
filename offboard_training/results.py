"""The adaptation results of docs/results.md: evaluation sets, the size sweep, the table.

Evaluation sets are fresh random-action episodes (seeds never used in training): held-out
episodes of the training terrains, and episodes under conditions never seen in training.
On each, every window of M past + K future transitions (stride ``EVAL_STRIDE``) is scored
before and after one adaptation step (offboard_training.evaluate), for the shipped GrBAL
model and for the shipped MB model, both with GrBAL's ``inner_lr``, M and K; each file's step
is the robot's (``inner_lr`` times the file's per-parameter scales where it carries them).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offboard_training.collect import CollectConfig, collect
from offboard_training.config import TrainConfig
from offboard_training.dataset import Episode, load_dataset
from offboard_training.evaluate import WindowErrors, errors_at, paired
from offboard_training.export import OnnxModel, read_onnx
from offboard_training.model import parameter_count, planning_flops
from offboard_training.train import train
from offboard_training.windows import to_transitions

EVAL_STRIDE = 8
"""Window stride inside an evaluation episode (windows overlap by M + K - 8)."""

EVAL_SETS: tuple[tuple[str, str], ...] = (
    ("training terrains, held-out episodes", ""),
    ("missing_leg=RF (carpet)", "terrain=carpet,missing_leg=RF"),
    ("payload_g=20 (carpet)", "terrain=carpet,payload_g=20"),
    (
        "payload_g=30 carried 30 mm behind centre (carpet)",
        "terrain=carpet,payload_g=30,payload_x_mm=-30",
    ),
    ("slope_deg=10 (carpet)", "terrain=carpet,slope_deg=10"),
    ("gain_left=0.5 (carpet)", "terrain=carpet,gain_left=0.5"),
    ("terrain=gravel (unseen)", "terrain=gravel"),
    ("training terrain carpet, nominal (reference for the carpet rows)", "terrain=carpet"),
)
"""(label, condition string); the empty string samples the training conditions."""

SWEEP_SIZES: tuple[tuple[int, ...], ...] = ((500, 500), (256, 256), (128, 128))
SIZE_TIE_TOLERANCE = 0.02
"""Relative GrBAL validation-error gap under which sizes count as equal: one seed, and the
sweep's budgets differ per size, so smaller gaps are not evidence."""


def collect_eval_sets(
    work: Path, episodes: int, seed: int, workers: int, progress: bool, cluster: str = ""
) -> dict[str, list[Episode]]:
    """Collects (or reuses, if already there with the same settings) each evaluation set
    (on the Ray ``cluster`` at that address if one is given, else ``workers`` processes)."""
    sets: dict[str, list[Episode]] = {}
    for i, (label, condition) in enumerate(EVAL_SETS):
        folder = work / "eval" / f"set_{i}"
        config = CollectConfig(
            episodes=episodes, seed=10_000 + 100 * seed + i, workers=workers, condition=condition
        )
        manifest = folder / "manifest.json"
        reuse = False
        if manifest.is_file():
            info = json.loads(manifest.read_text()).get("info", {})
            reuse = all(info.get(k) == v for k, v in config.__dict__.items())
        if not reuse:
            collect(config, folder, progress, cluster=cluster)
        sets[label], _ = load_dataset([folder])
    return sets


def evaluate_model(
    model: OnnxModel, episodes: Sequence[Episode], M: int, K: int, inner_lr: float
) -> WindowErrors:
    """Errors before and after the step of size ``inner_lr`` (times the model's own step
    scales, if its file carries them)."""
    data = to_transitions(episodes, model.norm)
    starts = data.window_starts(M + K, EVAL_STRIDE)
    return errors_at(model.params, data, starts, M, K, model.step_for(inner_lr))


def window_episodes(episodes: Sequence[Episode], M: int, K: int) -> np.ndarray:
    """The episode index of every evaluation window (same order as ``evaluate_model``)."""
    lengths = [ep.steps for ep in episodes]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    ids = [
        np.full(len(range(a, b - (M + K) + 1, EVAL_STRIDE)), i)
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
        if b - a >= M + K
    ]
    return np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class SweepRow:
    hidden: tuple[int, ...]
    params: int
    gflop: float
    grbal: dict
    mb: dict
    unseen_after: float
    """Mean after-step error of the sweep's GrBAL model over the unseen-condition sets."""
    minutes: float


def run_sweep(
    data_dir: Path,
    work: Path,
    minutes: float,
    seed: int,
    eval_sets: dict[str, list[Episode]],
    progress: bool,
    sizes: Sequence[tuple[int, ...]] = SWEEP_SIZES,
    cluster: str = "",
) -> list[SweepRow]:
    """Trains GrBAL (3/4 of each size's minutes) and MB (1/4) per size; shipped M/K/lr.

    Each (size, algorithm) is one training run: one after another here, or one Ray task
    each on the ``cluster`` at that address (offboard_training/cluster.py), the dataset
    and evaluation sets going to the tasks through the object store."""
    episodes, summary = load_dataset([data_dir])
    runs = [
        (algo, tuple(hidden), share * minutes / len(sizes), seed, str(work))
        for hidden in sizes
        for algo, share in (("grbal", 0.75), ("mb", 0.25))
    ]
    shared: dict[str, Any] = {"episodes": episodes, "summary": summary, "eval_sets": eval_sets}
    done: dict[tuple[str, tuple[int, ...]], tuple[dict, float, float]] = {}
    if cluster:
        from offboard_training.cluster import connected, run_tasks

        with connected(cluster):
            for i, result in run_tasks(_sweep_run, runs, what="results sweep", shared=shared):
                done[runs[i][0], runs[i][1]] = result
    else:
        for run in runs:
            done[run[0], run[1]] = _sweep_run(*run, **shared, progress=progress)
    rows = []
    for hidden in sizes:
        (grbal, unseen_after, s_grbal), (mb, _, s_mb) = (
            done["grbal", tuple(hidden)],
            done["mb", tuple(hidden)],
        )
        rows.append(
            SweepRow(
                hidden,
                parameter_count(hidden),
                planning_flops(hidden) / 1e9,
                grbal,
                mb,
                unseen_after,
                (s_grbal + s_mb) / 60.0,
            )
        )
    return rows


def _sweep_run(
    algo: str,
    hidden: tuple[int, ...],
    minutes: float,
    seed: int,
    work: str,
    episodes: Sequence[Episode],
    summary: dict,
    eval_sets: dict[str, list[Episode]],
    progress: bool = False,
) -> tuple[dict, float, float]:
    """One sweep training run: its best metrics, for GrBAL the mean after-step error over
    the unseen-condition sets (else nan), and its seconds."""
    from offboard_training.export import export_run
    from offboard_training.pipeline import shipped_config

    t0 = time.monotonic()
    name = "x".join(str(h) for h in hidden)
    base = shipped_config(algo, seed, minutes)
    config = TrainConfig.from_json({**base.to_json(), "hidden": list(hidden)})
    run_dir = Path(work) / "sweep" / f"{algo}_{name}"
    train(config, episodes, summary, run_dir, progress)
    best = json.loads((run_dir / "summary.json").read_text())["best_metrics"]
    metrics = {
        "val_mse": best["val_mse"],
        "val_before": best["val_before_step"],
        "val_after": best["val_after_step"],
        "epochs": best["epoch"],
    }
    unseen_after = float("nan")
    if algo == "grbal":
        model = read_onnx(export_run(run_dir, run_dir / "model.onnx").path)
        unseen = [
            evaluate_model(model, eps, config.M, config.K, config.inner_lr).after
            for label, eps in eval_sets.items()
            if not label.startswith("training")
        ]
        unseen_after = sum(unseen) / len(unseen)
    return metrics, unseen_after, time.monotonic() - t0


def results_markdown(
    command: str,
    grbal_path: Path,
    mb_path: Path,
    grbal: OnnxModel,
    mb: OnnxModel,
    table: dict[str, dict[str, WindowErrors]],
    groups: dict[str, np.ndarray],
    sweep: list[SweepRow] | None,
    sweep_minutes: float,
    eval_episodes: int,
    closed_loop: str = "",
) -> str:
    meta = grbal.metadata
    data = json.loads(meta["roach.training_data"])
    M, K, lr = grbal.M, grbal.K, grbal.inner_lr
    lines = [
        "# Results: does the adaptation step help?",
        "",
        f"Produced by `{command}` (code {meta['roach.code_version']}).",
        "",
        f"Models: `{grbal_path}` (GrBAL) and `{mb_path}` (MB), hidden "
        f"{meta['roach.hidden']}, trained on {data['episodes']} random-action episodes "
        f"({data['simulated_minutes']} simulated minutes; terrains {data['terrains']}).",
        "",
    ]
    if closed_loop:
        lines += ["## Closed loop: the suite", "", closed_loop.rstrip("\n"), ""]
    lines += [
        "## K-step prediction error before and after one adaptation step",
        "",
        f"Each evaluation set is {eval_episodes} fresh random-action episodes (seeds never used "
        "in training). Every window of "
        f"M={M} past + K={K} future consecutive transitions (stride {EVAL_STRIDE}) is scored: "
        "normalised MSE of the one-step predictions over the K future transitions (mean over "
        "K x 24 elements), *before* = with the model's own weights, *after* = after one SGD "
        f"step of size {lr:g} on the M past transitions, as the robot takes it "
        f"(docs/model-format.md): {_step_words(grbal, 'GrBAL')}; {_step_words(mb, 'MB')}. "
        "Mean over windows +- standard error; *improved* = share of windows the step made "
        "better. Lower is better.",
        "",
        "The two last columns are paired over the same windows: mean difference +- its "
        "standard error over the episodes' means (windows of one episode overlap, so they "
        "are not counted as independent). Negative = the step lowers GrBAL's error / GrBAL "
        "after its step predicts better than MB.",
        "",
        "| evaluation set | windows | GrBAL before | GrBAL after | improved | MB before "
        f"| MB after (step {lr:g}) | GrBAL after - before | GrBAL after - MB before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts: dict[str, dict[bool, list[str]]] = {
        "step": {True: [], False: []},
        "mb": {True: [], False: []},
    }
    for label, row in table.items():
        g, m = row["grbal"], row["mb"]
        step = paired(g.after_w, g.before_w, groups[label])
        vs_mb = paired(g.after_w, m.before_w, groups[label])
        lines.append(
            f"| {label} | {g.windows} | {_pm(g.before, g.before_se)} | "
            f"**{_pm(g.after, g.after_se)}** | {g.improved:.0%} | {_pm(m.before, m.before_se)} | "
            f"{_pm(m.after, m.after_se)} | {_pm(*step)} | {_pm(*vs_mb)} |"
        )
        verdicts["step"][_clear(*step)].append(label)
        verdicts["mb"][_clear(*vs_mb)].append(label)
    lines += [
        "",
        "Read off the paired columns (clearly = more than two standard errors below zero):",
        "",
        f"- the step clearly lowers GrBAL's error on: {_join(verdicts['step'][True])}; "
        f"not on: {_join(verdicts['step'][False])}.",
        f"- GrBAL after its step is clearly below MB on: {_join(verdicts['mb'][True])}; "
        f"not on: {_join(verdicts['mb'][False])}.",
        "",
    ]
    if sweep:
        lines += _sweep_markdown(sweep, sweep_minutes, meta["roach.hidden"])
    return "\n".join(lines) + "\n"


def _sweep_markdown(sweep: list[SweepRow], minutes: float, shipped: str) -> list[str]:
    lines = [
        "## Model size",
        "",
        "Each size trained on the shipped dataset with the shipped M, K, inner step and seed, "
        f"but a smaller budget than the shipped models (the sweep totals about {minutes:g} "
        "minutes: 3/4 of each size's share to GrBAL, 1/4 to MB; early stopping may end a run "
        "sooner). Validation = the held-out-by-episode split of the training data (K-step "
        "error, windows of stride K); *unseen* = mean GrBAL after-step error over the "
        "unseen-condition evaluation sets above. Planning cost = multiply-adds x 2 for "
        "N=1000 candidates x H=5 steps per control step (x10 per second at 10 Hz). "
        "`roach results` without `--reuse-sweep` reruns the sweep (`--sweep-only` runs just "
        "the sweep into the work folder's sweep.json).",
        "",
        "| hidden | parameters | planning GFLOP/step | GrBAL val before | GrBAL val after "
        "| GrBAL unseen after | MB val one-step | MB val before | MB val after | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sweep:
        name = "x".join(str(h) for h in r.hidden)
        lines.append(
            f"| {name} | {r.params:,} | {r.gflop:.2f} | {r.grbal['val_before']:.4f} | "
            f"{r.grbal['val_after']:.4f} | {r.unseen_after:.4f} | {r.mb['val_mse']:.4f} | "
            f"{r.mb['val_before']:.4f} | {r.mb['val_after']:.4f} | {r.minutes:.1f} |"
        )
    best = min(r.grbal["val_after"] for r in sweep)
    ties = [r for r in sweep if r.grbal["val_after"] <= (1.0 + SIZE_TIE_TOLERANCE) * best]
    pick = min(ties, key=lambda r: r.gflop)
    name = "x".join(str(h) for h in pick.hidden)
    lines += [
        "",
        "Rule: the cheapest size to plan with among those whose GrBAL validation error after "
        f"the step is within {SIZE_TIE_TOLERANCE:.0%} of the best (one seed and unequal "
        "budgets per size: smaller gaps are not evidence). Planning dominates the onboard "
        "step and a Pi-class CPU has a few GFLOP/s per core, so every saved operation is "
        "margin against the 100 ms period (`roach bench onboard` prints the step times). "
        f"Here that is **{name}** ({pick.gflop:.2f} GFLOP per control step); the shipped "
        f"models are {shipped.replace(',', 'x')}"
        + (" (agrees)." if name == shipped.replace(",", "x") else " (DISAGREES)."),
    ]
    lines.append("")
    return lines


def _step_words(model: OnnxModel, name: str) -> str:
    """How the file's step is sized: one number, or the number times learned scales."""
    f = model.file
    if f.step_weights is None or f.step_biases is None:
        return f"{name}'s file has no per-parameter scales, so every parameter steps by it"
    scales = np.concatenate([np.ravel(a) for a in (*f.step_weights, *f.step_biases)])
    lo, mid, hi = np.percentile(scales, [5, 50, 95])
    return (
        f"{name}'s file carries a learned scale per parameter (median {mid:.2g}, 5 to 95 % "
        f"{lo:.2g} to {hi:.2g}) and each parameter steps by the size times its scale"
    )


def _clear(mean: float, se: float) -> bool:
    return bool(mean + 2.0 * se < 0.0)


def _join(labels: list[str]) -> str:
    return "; ".join(labels) if labels else "none"


def _pm(mean: float, se: float) -> str:
    return f"{mean:.4f} +- {se:.4f}"
