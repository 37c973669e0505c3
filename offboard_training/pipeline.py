"""Multi-step recipes: training with on-policy aggregation, and the shipped models' recipe.

``train_with_aggregation``: fit on the given data; then ``iterations`` times: export the
current model, collect episodes with the ``mpc`` policy on it (the onboard controller's
own adaptation and planner, adapting as the robot would adapt that model; see
offboard_training/collect.py), add them to the pool and refit from scratch on
everything (the paper's data aggregation).

``train_all``: the one command behind ``models/``: collect random-action data on the
training terrains, train MB and GrBAL with the shipped settings, continue GrBAL's
meta-training with a step learned per parameter, export MB and that GrBAL.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from offboard_training.collect import CollectConfig, collect
from offboard_training.config import TrainConfig
from offboard_training.dataset import load_dataset
from offboard_training.export import export_run
from offboard_training.train import TrainResult, train
from robot_contract.errors import ConfigError

EPISODE_S = 11.0
"""Simulated seconds per 110-step episode."""


def train_with_aggregation(
    config: TrainConfig,
    data: list[Path],
    run_dir: Path,
    iterations: int = 0,
    episodes_per_iteration: int = 20,
    workers: int = 2,
    progress: bool = True,
) -> TrainResult:
    """Trains into ``run_dir``; with ``iterations`` > 0 adds on-policy data (the onboard
    controller driving the simulator with the current model) and retrains each time.

    The on-policy datasets go to ``run_dir/aggregate/data_{i}``, the model each was
    collected with to ``run_dir/aggregate/iter_{i}.onnx``, each fit's metrics to
    ``run_dir/aggregate/metrics_{i}.jsonl``.
    """
    run_dir = Path(run_dir)
    folders = list(data)
    episodes, summary = load_dataset(folders)
    result = train(config, episodes, summary, run_dir, progress)
    agg = run_dir / "aggregate"
    for i in range(1, iterations + 1):
        agg.mkdir(parents=True, exist_ok=True)
        shutil.copy(run_dir / "metrics.jsonl", agg / f"metrics_{i - 1}.jsonl")
        model = export_run(run_dir, agg / f"iter_{i - 1}.onnx").path
        folder = agg / f"data_{i}"
        collect(
            CollectConfig(
                episodes=episodes_per_iteration,
                seed=1_000_000 + config.seed * 1000 + i,
                workers=workers,
                policy="mpc",
                model=str(model),
            ),
            folder,
            progress,
        )
        folders.append(folder)
        episodes, summary = load_dataset(folders)
        result = train(config, episodes, summary, run_dir, progress)
    return result


# The shipped settings (the size sweep and the tuning runs are in docs/results.md and
# docs/training.md). MB carries the same M, K and inner_lr so "MB + the same step" is defined.
SHIPPED_HIDDEN = (128, 128)
SHIPPED_M = 32
SHIPPED_K = 16
SHIPPED_INNER_LR = 0.3
SHIPPED_ROBOT_INNER_LR = 0.15
"""The robot's step: half the meta-training step drove better on every condition of the
closed-loop ablation (docs/evaluation.md)."""


STAGES: tuple[tuple[str, str, float], ...] = (
    ("mb", "mb", 0.25),
    ("grbal", "grbal", 0.45),
    ("grbal-step", "grbal", 0.30),
)
"""``train_all``'s runs: (run folder, algorithm, share of the training budget). ``grbal-step``
starts from the ``grbal`` run and meta-learns one step size per parameter with the weights
(``learn_step``; 7 to 8 % lower validation error after the step, and better in closed
loop: docs/evaluation.md); it is the GrBAL file shipped."""
EXPORTED = {"mb": "mb", "grbal-step": "grbal"}
"""Run folder -> the file name (``<name>.onnx``) it is exported to."""


def shipped_config(algo: str, seed: int, max_minutes: float) -> TrainConfig:
    return TrainConfig(
        algo=algo,
        hidden=SHIPPED_HIDDEN,
        M=SHIPPED_M,
        K=SHIPPED_K,
        inner_lr=SHIPPED_INNER_LR,
        robot_inner_lr=SHIPPED_ROBOT_INNER_LR,
        seed=seed,
        max_minutes=max_minutes,
        epochs=300 if algo == "grbal" else 200,
        patience=12 if algo == "grbal" else 15,
    )


@dataclass(frozen=True)
class TrainAllReport:
    data_dir: Path
    collect_s: float
    results: dict[str, TrainResult]
    exports: dict[str, Path]
    sizes: dict[str, int]
    wall_s: float


def train_all(
    out: Path,
    seed: int = 0,
    budget_minutes: float = 50.0,
    work: Path | None = None,
    minutes_per_terrain: float = 30.0,
    workers: int = 2,
    progress: bool = True,
    data: Path | None = None,
    variation: str = "terrain",
) -> TrainAllReport:
    """Collects (unless ``data`` is given), trains the ``STAGES``, exports ``out/{mb,grbal}.onnx``.

    The budget caps the training: MB may use 1/4 of it, GrBAL 0.45 and its learned-step
    continuation 0.3 (collection comes on top). Early stopping ends all three well before
    their caps on a 2-core machine; a run that reaches a cap stops by the clock and is then
    not reproducible on another machine (its result says ``stopped_by="clock"``).
    Everything recorded in the model files depends on the command and the code only, so
    rerunning it gives the same files.
    """
    if budget_minutes <= 0 or minutes_per_terrain <= 0:
        raise ConfigError("--budget-minutes and --minutes-per-terrain must be > 0")
    t0 = time.monotonic()
    work = Path(work) if work else Path("runs") / f"train-all-seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = work / "data"
        episodes = max(2, round(3 * minutes_per_terrain * 60.0 / EPISODE_S))
        plan = CollectConfig(episodes=episodes, seed=seed, workers=workers, variation=variation)
        collect(plan, data, progress)
    collect_s = time.monotonic() - t0
    episodes_list, summary = load_dataset([data])
    results: dict[str, TrainResult] = {}
    exports: dict[str, Path] = {}
    sizes: dict[str, int] = {}
    for name, algo, share in STAGES:
        # Fixed shares of the budget, whatever the collection took: the recorded training
        # config, and so the file, depends on the command only.
        config = shipped_config(algo, seed, max_minutes=share * budget_minutes)
        if name == "grbal-step":
            config = dataclasses.replace(config, learn_step=True, init_from=str(work / "grbal"))
        results[name] = train(config, episodes_list, summary, work / name, progress)
        if name in EXPORTED:
            report = export_run(work / name, Path(out) / f"{EXPORTED[name]}.onnx")
            exports[name], sizes[name] = report.path, report.bytes
    wall = time.monotonic() - t0
    record = {
        "seed": seed,
        "data": str(data),
        "data_summary": summary,
        "collect_s": round(collect_s, 1),
        "wall_s": round(wall, 1),
        "runs": {
            a: dataclasses.asdict(r) | {"run_dir": str(r.run_dir)} for a, r in results.items()
        },
        "sizes_bytes": sizes,
    }
    (work / "train_all.json").write_text(json.dumps(record, indent=1))
    return TrainAllReport(data, collect_s, results, exports, sizes, wall)
