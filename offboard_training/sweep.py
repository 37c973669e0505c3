"""Training sweeps: a grid over hidden size, M, K, inner step and seed, one run per point.

Each grid point is one ``train`` run (offboard_training/train.py) into
``OUT/trials/<name>/``; its best-epoch validation figures are one row of the sweep table.
Without a cluster the runs go one after another in this process; with one
(``--cluster``, offboard_training/cluster.py) each is a Ray Tune trial, one CPU each,
reporting every epoch's validation figures as it goes (Tune's status table is the
progress). The dataset goes to the trials through Ray's object store; the run folders
are written where the trial runs (a shared path on a cluster of several machines).

A trial whose worker dies is restarted from its first epoch up to ``TASK_RETRIES``
times (Tune's ``FailureConfig``); one that still fails is named in a one-line error
after the table of the others is written, never left out silently. Training is seeded
and single-threaded, so a row does not depend on where or when its trial ran.

Written to ``OUT``: ``sweep.json`` (every row), ``sweep.md`` (the table) and
``best.toml``, the best run's training configuration, which ``roach train --config``
takes as it is.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offboard_training.cluster import TASK_RETRIES, ClusterError, check_cluster, connected
from offboard_training.config import TrainConfig
from offboard_training.dataset import Episode, load_dataset
from robot_contract.errors import ConfigError


@dataclass(frozen=True)
class SweepGrid:
    """The grid: every combination of the values below on top of ``base``."""

    base: TrainConfig
    hidden: tuple[tuple[int, ...], ...]
    M: tuple[int, ...]
    K: tuple[int, ...]
    inner_lr: tuple[float, ...]
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("hidden", "M", "K", "inner_lr", "seeds"):
            values = getattr(self, name)
            if not values:
                raise ConfigError(f"sweep: no value for {name}")
            if len(set(values)) != len(values):
                raise ConfigError(f"sweep: {name} lists a value twice: {list(values)}")
        self.configs()  # every point is a valid TrainConfig, or a ConfigError now

    def configs(self) -> list[TrainConfig]:
        """One training configuration per grid point, in grid order (hidden slowest)."""
        return [
            dataclasses.replace(self.base, hidden=h, M=m, K=k, inner_lr=lr, seed=s)
            for h, m, k, lr, s in itertools.product(
                self.hidden, self.M, self.K, self.inner_lr, self.seeds
            )
        ]


def trial_name(config: TrainConfig) -> str:
    """``h64x64_M32_K16_lr0.3_s0``: the grid point, as a folder name."""
    hidden = "x".join(str(h) for h in config.hidden)
    return f"h{hidden}_M{config.M}_K{config.K}_lr{config.inner_lr:g}_s{config.seed}"


def run_trial(
    config: TrainConfig,
    episodes: Sequence[Episode],
    summary: dict,
    out: Path,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict:
    """Trains one grid point into ``out/trials/<name>``; returns its sweep-table row."""
    from offboard_training.train import train

    name = trial_name(config)
    result = train(config, episodes, summary, Path(out) / "trials" / name, False, on_epoch)
    run = json.loads((result.run_dir / "summary.json").read_text())
    best = run["best_metrics"] or {}
    return {
        "name": name,
        "config": config.to_json(),
        "best_val": result.best_val,
        "val_mse": best.get("val_mse", math.nan),
        "val_before": best.get("val_before_step", math.nan),
        "val_after": best.get("val_after_step", math.nan),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_by": result.stopped_by,
        "wall_s": round(result.wall_s, 2),
    }


_REPORTED = ("val_mse", "val_before_step", "val_after_step")
"""Each epoch's validation figures a Tune trial reports (its status table shows them)."""


def _tune_trial(
    params: dict, configs: dict[str, dict], episodes: list[Episode], summary: dict, out: str
) -> None:
    """One Ray Tune trial: trains its grid point and reports every epoch, then its row."""
    from ray import tune

    def report(row: dict) -> None:
        tune.report({"epoch": row["epoch"], **{k: row[k] for k in _REPORTED}})

    config = TrainConfig.from_json(configs[params["trial"]])
    row = run_trial(config, episodes, summary, Path(out), report)
    best = {"val_mse": row["val_mse"], "val_before_step": row["val_before"]}
    tune.report({"epoch": row["best_epoch"], **best, "val_after_step": row["val_after"],
                 "row": json.dumps(row)})  # fmt: skip


def run_sweep(
    grid: SweepGrid,
    data: Sequence[Path],
    out: Path,
    cluster: str = "",
    progress: bool = True,
) -> list[dict]:
    """Runs every grid point (on the ``cluster`` at that address, or here one after the
    other) and writes ``sweep.json``, ``sweep.md`` and ``best.toml`` into ``out``."""
    if cluster:
        check_cluster(cluster)
    out = Path(out).resolve()
    episodes, summary = load_dataset(list(data))
    configs = grid.configs()
    t0 = time.monotonic()
    if cluster:
        rows, failed = _on_tune(configs, episodes, summary, out, cluster, progress)
    else:
        rows, failed = [], []
        for i, config in enumerate(configs, 1):
            rows.append(run_trial(config, episodes, summary, out))
            if progress:
                print(f"trial {i}/{len(configs)} {_progress_line(rows[-1])}", flush=True)
    order = {trial_name(c): i for i, c in enumerate(configs)}
    rows.sort(key=lambda r: order[r["name"]])
    write_outputs(out, rows, grid, time.monotonic() - t0)
    if failed:
        raise ClusterError(
            f"sweep: {len(failed)} of {len(configs)} trials failed after {TASK_RETRIES} "
            f"retries: {'; '.join(failed)} (the others are in {out / 'sweep.md'})"
        )
    return rows


def _progress_line(row: dict) -> str:
    return (
        f"{row['name']}: best validation {row['best_val']:.4f} at epoch {row['best_epoch']} "
        f"({row['epochs_run']} epochs, {row['wall_s']:.0f} s)"
    )


def _on_tune(
    configs: list[TrainConfig],
    episodes: list[Episode],
    summary: dict,
    out: Path,
    cluster: str,
    progress: bool,
) -> tuple[list[dict], list[str]]:
    """The grid as Ray Tune trials; returns the finished rows and the failed trials."""
    with connected(cluster):
        from ray import tune

        by_name = {trial_name(c): c.to_json() for c in configs}
        trainable = tune.with_parameters(
            _tune_trial, configs=by_name, episodes=episodes, summary=summary, out=str(out)
        )
        score = "val_after_step" if configs[0].algo == "grbal" else "val_mse"
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"trial": tune.grid_search(list(by_name))},
            tune_config=tune.TuneConfig(metric=score, mode="min", reuse_actors=True),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(out),
                failure_config=tune.FailureConfig(max_failures=TASK_RETRIES),
                verbose=1 if progress else 0,
            ),
        )
        results = tuner.fit()
        rows, failed = [], []
        for result in (results[i] for i in range(len(results))):
            row = (result.metrics or {}).get("row")
            name = (result.config or {}).get("trial", "?")
            if result.error is not None or row is None:
                failed.append(f"{name} ({_one_line(result.error)})")
            else:
                rows.append(json.loads(row))
                if progress:
                    print(f"trial {_progress_line(rows[-1])}", flush=True)
        return rows, failed


def _one_line(exc: BaseException | None) -> str:
    text = " ".join(str(exc).split()) if exc is not None else "no result"
    return text if len(text) <= 200 else text[:197] + "..."


# -- what the sweep writes -----------------------------------------------------------------


def best_row(rows: Sequence[dict]) -> dict:
    """The row with the lowest early-stopping score (GrBAL: K-step error after the step;
    MB: one-step error), ties to the first in grid order."""
    return min(rows, key=lambda r: r["best_val"])


def write_outputs(out: Path, rows: list[dict], grid: SweepGrid, wall_s: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(rows, indent=1))
    (out / "sweep.md").write_text(sweep_markdown(rows, grid, wall_s))
    if rows:
        (out / "best.toml").write_text(config_toml(TrainConfig.from_json(best_row(rows)["config"])))


def sweep_markdown(rows: Sequence[dict], grid: SweepGrid, wall_s: float) -> str:
    base = grid.base
    lines = [
        f"# Sweep: {base.algo}, {len(rows)} runs",
        "",
        f"Budget per run: at most {base.epochs} epochs of {base.steps_per_epoch} steps, "
        f"patience {base.patience}. Validation = the held-out-by-episode split (K-step "
        "error, windows of stride K; normalised MSE). Best = lowest "
        + ("K-step error after the step" if base.algo == "grbal" else "one-step error")
        + f". Wall time {wall_s:.0f} s.",
        "",
        "| run | hidden | M | K | inner step | seed | val one-step | val before step "
        "| val after step | best epoch | epochs | s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    best = best_row(rows)["name"] if rows else None
    for r in rows:
        c = r["config"]
        name = f"**{r['name']}**" if r["name"] == best else r["name"]
        lines.append(
            f"| {name} | {'x'.join(str(h) for h in c['hidden'])} | {c['M']} | {c['K']} | "
            f"{c['inner_lr']:g} | {c['seed']} | {r['val_mse']:.4f} | {r['val_before']:.4f} | "
            f"{r['val_after']:.4f} | {r['best_epoch']} | {r['epochs_run']} | {r['wall_s']:.0f} |"
        )
    if best:
        lines += ["", f"Best: **{best}**; its configuration: `best.toml` (`roach train --config`)."]
    return "\n".join(lines) + "\n"


def config_toml(config: TrainConfig) -> str:
    """``config`` as a flat TOML table of TrainConfig fields (``load_config_toml`` reads it)."""
    lines = ["# Training configuration (roach train --config FILE); keys: TrainConfig fields."]
    for key, value in config.to_json().items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def load_config_toml(path: Path) -> TrainConfig:
    """A training configuration TOML (as ``config_toml`` writes it), or a one-line error."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--config {path}: not a readable TOML file ({exc})") from None
    try:
        return TrainConfig.from_json(data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--config {path}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"--config {path}: {exc}") from None
