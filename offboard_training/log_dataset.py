"""Run and collection logs as training data: ``roach train --data`` takes a folder of
MCAP logs (``roach collect --port``, ``roach run``; real or simulated) beside dataset
folders, or one log file.

Each log becomes episodes the way ``roach replay --to-dataset`` cuts them
(onboard/replay_outputs.py ``chains``): transition k is ``(s_k, a_k, s_{k+1})`` with
``a_k`` the command sent at tick k; a tick without a state, a tick gap, or a stop ends
the chain. A stopping tick's state is dropped too (it is what the stop was about: a
tipped body, an implausible reading), so no transition reaches into a safety stop or
spans it. A log cut short by a crash is read to its last whole tick (onboard
read_log). Chains are cut into episodes of ``EPISODE_STEPS`` transitions; pieces
shorter than ``min_steps`` are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from offboard_training.dataset import Episode
from offboard_training.errors import DatasetError
from onboard.logging_mcap import read_log
from onboard.replay_outputs import chains
from robot_contract.state import ACTION_DIM, STATE_DIM

MIN_STEPS = 2
"""Chains shorter than this are not worth a meta-training window and are skipped."""
EPISODE_STEPS = 110
"""Longer chains (a collection session is one) are cut into episodes of this many
transitions, the published episode length, so whole episodes can be held out."""


def log_files(path: Path) -> list[Path] | None:
    """The MCAP logs ``path`` names (a .mcap file, or a folder without a manifest holding
    some), sorted; None if ``path`` is not a log source."""
    if path.is_file() and path.suffix == ".mcap":
        return [path]
    if path.is_dir() and not (path / "manifest.json").exists():
        found = sorted(path.glob("*.mcap"))
        return found or None
    return None


def episodes_from_log(path: Path, min_steps: int = MIN_STEPS) -> tuple[list[Episode], dict]:
    """The episodes of one log and what it held; DatasetError (one line) if unreadable."""
    try:
        log = read_log(path)
    except Exception as exc:  # the mcap reader raises many types for a file that is not MCAP
        raise DatasetError(f"{path}: not an MCAP run log ({type(exc).__name__})") from None
    run: dict[str, Any] = log.run or {}
    kind = run.get("kind", "run")
    label = str(run.get("label", "")) if kind == "collect" else ""
    ticks = [_usable(t) for t in log.ticks]
    episodes: list[Episode] = []
    skipped = 0
    pieces = [
        (states[i : i + EPISODE_STEPS + 1], actions[i : i + EPISODE_STEPS])
        for states, actions in chains(ticks)
        for i in range(0, len(actions), EPISODE_STEPS)
    ]
    for states, actions in pieces:
        if len(actions) < min_steps:
            skipped += 1
            continue
        if states.shape[1] != STATE_DIM or actions.shape[1] != ACTION_DIM:
            raise DatasetError(f"{path}: states {states.shape} / actions {actions.shape} "
                               f"are not [T+1, {STATE_DIM}] / [T, {ACTION_DIM}]")  # fmt: skip
        if not (np.isfinite(states).all() and np.isfinite(actions).all()):
            raise DatasetError(f"{path}: a logged state or command is not finite")
        episodes.append(
            Episode(
                states.astype(np.float64),
                actions.astype(np.float64),
                f"terrain={label}" if label else "",
                -1,
                "random" if kind == "collect" else "mpc",
            )
        )
    info = {"log": str(path), "kind": kind, "label": label, "ticks": len(log.ticks),
            "finished": log.finished, "short_chains_skipped": skipped}  # fmt: skip
    return episodes, info


def _usable(tick: dict[str, Any]) -> dict[str, Any]:
    """A stopping tick without its state: the chain ends at the last command's outcome
    before it, not at the state that made the robot stop."""
    if tick.get("command", {}).get("kind") == "stop" and tick.get("state") is not None:
        return {**tick, "state": None}
    return tick


def episodes_from_logs(paths: list[Path], where: Path) -> tuple[list[Episode], list[dict]]:
    """Every log's episodes, pooled; DatasetError if none of them holds a transition."""
    episodes: list[Episode] = []
    infos: list[dict] = []
    for p in paths:
        eps, info = episodes_from_log(p)
        episodes += eps
        infos.append(info)
    if not episodes:
        raise DatasetError(
            f"{where}: the logs hold no run of {MIN_STEPS} or more transitions "
            "(no two driven ticks in a row)"
        )
    return episodes, infos
