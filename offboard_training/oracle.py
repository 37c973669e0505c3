"""Oracle models for the closed-loop suite: MB trained on data from the test condition itself.

The published comparison normalises each controller's cost to an oracle's, a plain model
learned where it is tested. For a condition that switches on mid-run (``key=value@T``)
the oracle learns the condition after the switch. Each oracle is trained with the
shipped MB recipe on ``minutes`` of random-action driving under its condition, collected
with a seed derived from the command's seed and the condition, so an oracle depends on
(condition, seed, minutes) only.

Finding an oracle (``oracle_model``) needs no PyTorch, so ``roach eval`` can run them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from robot_contract.errors import ConfigError

ORACLE_MINUTES = 30.0
"""Driving time each oracle learns from: one training terrain's worth of the shipped data."""


def steady_condition(condition: str) -> str:
    """The condition in force once every switch and ramp is over, as a condition string."""
    from firmware_bridge.sim.conditions import parse_condition

    parsed = parse_condition(condition)
    settled = parsed.at(float("inf"))
    return str(dataclasses.replace(settled, switch_s=(), ramp_s=()))


def oracle_name(condition: str) -> str:
    """A file stem for the condition's oracle: readable, and unique per condition string."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", condition).strip("-")[:60] or "nominal"
    digest = hashlib.sha256(condition.encode()).hexdigest()[:8]
    return f"oracle-{slug}-{digest}"


def _condition_seed(seed: int, condition: str) -> int:
    return (seed * 1_000_003 + int(hashlib.sha256(condition.encode()).hexdigest()[:8], 16)) % (
        2**31
    )


@dataclass(frozen=True)
class OracleReport:
    condition: str
    trained_on: str
    path: Path
    val_loss: float
    wall_s: float


def train_oracles(
    conditions: Iterable[str],
    out: Path,
    seed: int = 0,
    minutes: float = ORACLE_MINUTES,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
    train_minutes: float = 30.0,
    cluster: str = "",
) -> list[OracleReport]:
    """Trains (or reuses, when its file and record exist) one oracle per condition into ``out``.

    Writes ``out/oracles.json``: the condition trained on -> model file, seed, minutes of
    data and validation loss, so a suite run can find each condition's oracle.

    ``cluster``: a Ray address (offboard_training/cluster.py); each oracle (its
    collection and its training run) is then one task, writing into ``out`` (a shared
    path on a cluster of several machines).
    """
    if not (math.isfinite(minutes) and 0 < minutes <= 600):
        raise ConfigError(f"--oracle-minutes {minutes}: must be in 0..600")
    if cluster:
        from offboard_training.cluster import check_cluster

        check_cluster(cluster)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "oracles.json"
    index: dict[str, dict] = json.loads(index_path.read_text()) if index_path.exists() else {}
    reports: dict[str, OracleReport] = {}
    todo: list[tuple[str, str, str]] = []
    same: dict[str, list[str]] = {}  # conditions that settle to one trained, in order
    for condition in dict.fromkeys(conditions):
        trained_on = steady_condition(condition)
        name = oracle_name(trained_on)
        model = out / f"{name}.onnx"
        entry = index.get(trained_on)
        wanted = _wanted(seed, minutes, train_minutes, model)
        if entry and model.exists() and all(entry.get(k) == v for k, v in wanted.items()):
            reports[condition] = OracleReport(condition, trained_on, model, entry["val_loss"], 0.0)
        elif trained_on in same:
            same[trained_on].append(condition)
        else:
            same[trained_on] = [condition]
            todo.append((condition, trained_on, name))

    def done(condition: str, trained_on: str, name: str, val_loss: float, wall: float) -> None:
        model = out / f"{name}.onnx"
        index[trained_on] = _wanted(seed, minutes, train_minutes, model) | {
            "val_loss": val_loss,
            "wall_s": round(wall, 1),
        }
        index_path.write_text(json.dumps(index, indent=1, sort_keys=True))
        reports[condition] = OracleReport(condition, trained_on, model, val_loss, wall)
        for alias in same[trained_on][1:]:
            reports[alias] = OracleReport(alias, trained_on, model, val_loss, 0.0)
        if progress:
            progress(f"oracle for {condition!r}: val {val_loss:.4f}, {wall:.0f} s")

    if cluster:
        from offboard_training.cluster import connected, run_tasks

        calls = [(on, name, seed, minutes, train_minutes, str(out), 1) for _, on, name in todo]
        with connected(cluster):
            for i, (val, wall) in run_tasks(_train_oracle, calls, what="oracle training"):
                done(*todo[i], val, wall)
    else:
        for condition, trained_on, name in todo:
            val, wall = _train_oracle(trained_on, name, seed, minutes, train_minutes, out, workers)
            done(condition, trained_on, name, val, wall)
    return [reports[c] for c in dict.fromkeys(conditions)]


def _wanted(seed: int, minutes: float, train_minutes: float, model: Path) -> dict:
    return {"seed": seed, "minutes": minutes, "model": model.name, "train_minutes": train_minutes}


def _train_oracle(
    trained_on: str,
    name: str,
    seed: int,
    minutes: float,
    train_minutes: float,
    out: str | Path,
    workers: int,
) -> tuple[float, float]:
    """Collects one oracle's data, trains it and writes ``out/<name>.onnx``; returns its
    validation loss and seconds."""
    from offboard_training.collect import CollectConfig, collect
    from offboard_training.dataset import load_dataset
    from offboard_training.export import export_run
    from offboard_training.pipeline import EPISODE_S, shipped_config
    from offboard_training.train import train

    t0 = time.monotonic()
    out = Path(out)
    work = out / name
    episodes = max(2, round(minutes * 60.0 / EPISODE_S))
    config = CollectConfig(
        episodes=episodes,
        seed=_condition_seed(seed, trained_on),
        workers=workers,
        condition=trained_on,
    )
    collect(config, work / "data", False)
    data, summary = load_dataset([work / "data"])
    recipe = shipped_config("mb", seed, max_minutes=train_minutes)
    result = train(recipe, data, summary, work / "mb", False)
    export_run(work / "mb", out / f"{name}.onnx")
    return result.best_val, time.monotonic() - t0


def _index(out: str | Path) -> dict[str, dict]:
    index_path = Path(out) / "oracles.json"
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"--oracle {str(out)!r}: no oracles.json (train the oracles first)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--oracle {str(index_path)!r}: unreadable ({exc})") from None
    if not isinstance(index, dict):
        raise ConfigError(f"--oracle {str(index_path)!r}: not an oracle index")
    return index


def has_oracle(out: str | Path, condition: str) -> bool:
    """Whether ``out`` holds an oracle trained on ``condition`` (once settled)."""
    return steady_condition(condition) in _index(out)


def oracle_model(out: str | Path, condition: str) -> Path:
    """The oracle model file for ``condition`` in ``out`` (trained by train_oracles)."""
    return _model_of(out, _index(out), condition)


def oracle_models(out: str | Path, conditions: Iterable[str]) -> dict[str, Path]:
    """condition -> oracle model file, for those of ``conditions`` that have an oracle in
    ``out`` (the index is read once)."""
    index = _index(out)
    return {c: _model_of(out, index, c) for c in conditions if steady_condition(c) in index}


def _model_of(out: str | Path, index: dict[str, dict], condition: str) -> Path:
    entry = index.get(steady_condition(condition))
    path = Path(out) / str(entry.get("model", "")) if isinstance(entry, dict) else None
    if path is None or not path.is_file():
        raise ConfigError(f"--oracle {str(out)!r}: no oracle model for condition {condition!r}")
    return path
