"""The on-disk rollout dataset: one ``.npz`` per episode plus a ``manifest.json``.

Layout of a dataset folder (see docs/training.md)::

    DIR/manifest.json        format version, state/action names, control period, episode list
    DIR/ep_00000.npz         states [T+1, 24] float64, actions [T, 2] float64,
                             condition (0-d unicode), seed (0-d int64), policy (0-d unicode)

Files are written and read with ``allow_pickle=False``. Anything missing, malformed or
inconsistent raises ``DatasetError`` with one line naming the file and what was expected.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offboard_training.errors import DatasetError
from robot_contract.state import (
    ACTION_DIM,
    ACTION_NAMES,
    CONTROL_PERIOD_S,
    MODEL_INPUT_STATE_SLICE,
    STATE_DIM,
    STATE_NAMES,
)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Episode:
    """One rollout: ``states`` [T+1, 24] (state units), ``actions`` [T, 2] (rev/s)."""

    states: np.ndarray
    actions: np.ndarray
    condition: str
    seed: int
    policy: str = "random"

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])

    def inputs(self) -> np.ndarray:
        """Model inputs [T, 24]: ``state[2:]`` of each step followed by its action."""
        return np.concatenate([self.states[:-1, MODEL_INPUT_STATE_SLICE], self.actions], axis=1)

    def deltas(self) -> np.ndarray:
        """Model targets [T, 24]: ``s_{t+1} - s_t`` in state units."""
        return np.diff(self.states, axis=0)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``: a library exception fit for a one-line error."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()  # no ANSI styling
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def episode_filename(index: int) -> str:
    return f"ep_{index:05d}.npz"


def write_episode(path: Path, ep: Episode) -> None:
    """Writes one episode file atomically (temp file + rename)."""
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        states=np.asarray(ep.states, dtype=np.float64),
        actions=np.asarray(ep.actions, dtype=np.float64),
        condition=np.array(ep.condition),
        seed=np.array(ep.seed, dtype=np.int64),
        policy=np.array(ep.policy),
    )
    os.replace(tmp, path)


def write_manifest(folder: Path, entries: list[dict], info: dict) -> None:
    """Writes ``manifest.json``: the episode list plus collection ``info`` (free-form JSON)."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "state_names": list(STATE_NAMES),
        "action_names": list(ACTION_NAMES),
        "control_period_s": CONTROL_PERIOD_S,
        "episodes": entries,
        "info": info,
    }
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder / MANIFEST)


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise DatasetError(f"{folder}: no such dataset folder (make one with `roach collect`)")
    if not path.is_file():
        raise DatasetError(f"{path}: missing manifest; a dataset folder holds manifest.json")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{path}: format_version must be {FORMAT_VERSION}")
    if manifest.get("state_names") != list(STATE_NAMES):
        raise DatasetError(f"{path}: state_names differ from robot_contract.state.STATE_NAMES")
    if manifest.get("action_names") != list(ACTION_NAMES):
        raise DatasetError(f"{path}: action_names must be {list(ACTION_NAMES)}")
    if not isinstance(manifest.get("episodes"), list) or not manifest["episodes"]:
        raise DatasetError(f"{path}: 'episodes' must be a non-empty list")
    if not isinstance(manifest.get("info", {}), dict):
        raise DatasetError(f"{path}: 'info' must be a JSON object")
    return manifest


def load_episode(path: Path) -> Episode:
    """Loads and validates one episode file."""
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path}: a single .npy array, not an .npz episode")
        with z:
            missing = {"states", "actions", "condition", "seed"} - set(z.files)
            if missing:
                raise DatasetError(f"{path}: missing arrays {sorted(missing)}")
            states = z["states"]
            actions = z["actions"]
            condition = z["condition"]
            seed = z["seed"]
            policy = z["policy"] if "policy" in z.files else np.array("random")
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: episode file listed in the manifest is missing") from None
    except Exception as exc:  # numpy/zipfile/zlib raise many types for a damaged file
        raise DatasetError(f"{path}: not a readable .npz episode ({one_line(exc)})") from None
    for name, a in (("states", states), ("actions", actions)):
        if a.dtype.kind not in "fiu":
            raise DatasetError(
                f"{path}: {name} has dtype {a.dtype}, expected real numbers (float64)"
            )
    for name, a in (("condition", condition), ("policy", policy)):
        if a.dtype.kind != "U" or a.ndim != 0:
            raise DatasetError(
                f"{path}: {name} is a {a.dtype} array of shape {a.shape}, expected a 0-d string"
            )
    if seed.dtype.kind not in "iu" or seed.ndim != 0:
        raise DatasetError(
            f"{path}: seed is a {seed.dtype} array of shape {seed.shape}, expected a 0-d integer"
        )
    if states.ndim != 2 or states.shape[1] != STATE_DIM:
        raise DatasetError(f"{path}: states has shape {states.shape}, expected [T+1, {STATE_DIM}]")
    if actions.ndim != 2 or actions.shape[1] != ACTION_DIM:
        raise DatasetError(f"{path}: actions has shape {actions.shape}, expected [T, {ACTION_DIM}]")
    if states.shape[0] != actions.shape[0] + 1 or actions.shape[0] < 1:
        raise DatasetError(
            f"{path}: {states.shape[0]} states for {actions.shape[0]} actions; "
            "expected T+1 states for T >= 1 actions"
        )
    if not (np.all(np.isfinite(states)) and np.all(np.isfinite(actions))):
        raise DatasetError(f"{path}: states or actions contain NaN or inf")
    return Episode(
        states.astype(np.float64),
        actions.astype(np.float64),
        str(condition),
        int(seed),
        str(policy),
    )


def load_dataset(folders: Sequence[Path | str]) -> tuple[list[Episode], dict]:
    """Loads every episode of one or more dataset folders (pooled, in order); a folder of
    MCAP logs (or one log file) is read as offboard_training/log_dataset.py says.

    Returns the episodes and a summary dict (episodes, transitions, terrains, seeds, folders).
    """
    if not folders:
        raise DatasetError("no dataset folder given")
    episodes: list[Episode] = []
    seeds: list[int] = []
    from offboard_training.log_dataset import episodes_from_logs, log_files  # (imports this)

    for folder in folders:
        folder = Path(folder)
        logs = log_files(folder)
        if logs is not None:  # MCAP logs of roach collect --port / roach run
            episodes += episodes_from_logs(logs, folder)[0]
            continue
        manifest = read_manifest(folder)
        for i, entry in enumerate(manifest["episodes"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
                raise DatasetError(f"{folder / MANIFEST}: episode {i} has no 'file' entry")
            episodes.append(load_episode(folder / entry["file"]))
        collect_seed = manifest.get("info", {}).get("seed")
        if isinstance(collect_seed, int):
            seeds.append(collect_seed)
    return episodes, summarize(episodes, [str(f) for f in folders], seeds)


def summarize(episodes: Sequence[Episode], folders: list[str], seeds: list[int]) -> dict:
    """A small JSON-able description of a dataset (goes into the model metadata)."""
    terrains: dict[str, int] = {}
    policies: dict[str, int] = {}
    for ep in episodes:
        terrain = _terrain_of(ep.condition)
        terrains[terrain] = terrains.get(terrain, 0) + 1
        policies[ep.policy] = policies.get(ep.policy, 0) + 1
    transitions = int(sum(ep.steps for ep in episodes))
    return {
        "episodes": len(episodes),
        "transitions": transitions,
        "simulated_minutes": round(transitions * CONTROL_PERIOD_S / 60.0, 2),
        "terrains": dict(sorted(terrains.items())),
        "policies": dict(sorted(policies.items())),
        "collect_seeds": seeds,
        "folders": folders,
    }


def _terrain_of(condition: str) -> str:
    """The terrain of a condition string; without a ``terrain`` key it is the default, carpet."""
    for part in condition.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "terrain":
            return value.strip().split("@")[0]
    return "carpet"


def split_by_episode(
    n_episodes: int, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation episodes; whole episodes go to one side only.

    At least one episode goes to each side when there are two or more episodes.
    """
    if n_episodes < 2:
        raise DatasetError(f"need at least 2 episodes to hold one out, got {n_episodes}")
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_val = min(max(1, round(val_fraction * n_episodes)), n_episodes - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])
