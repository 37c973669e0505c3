"""Rollouts in the simulator, in parallel worker processes, written as a dataset folder.

Random policy: each action is uniform in the bounds (2..9 rev/s per side) and held for a
random 1 to 5 control steps, so the data holds both steady gaits and changes. MPC policy:
random shooting with a trained model (offboard_training.mpc). Conditions: by default one
``sample_training_condition`` per episode (a training terrain with its natural variation);
``condition`` fixes one condition string for every episode instead (used for evaluation
sets under conditions never seen in training).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from offboard_training.dataset import (
    Episode,
    episode_filename,
    one_line,
    write_episode,
    write_manifest,
)
from offboard_training.errors import DatasetError
from offboard_training.version import code_version
from robot_contract.errors import ConfigError, RoachError
from robot_contract.state import ACTION_DIM, ACTION_HIGH_REV_S, ACTION_LOW_REV_S

POLICIES = ("random", "mpc")


@dataclass(frozen=True)
class CollectConfig:
    """One collection run."""

    episodes: int
    seed: int = 0
    workers: int = 2
    policy: str = "random"
    """``random`` or ``mpc`` (needs ``model``)."""
    model: str = ""
    """ONNX model file the MPC policy plans with."""
    condition: str = ""
    """Fixed condition string for every episode; empty = sample training conditions."""
    hold_min: int = 1
    """Random policy: fewest control steps an action is held."""
    hold_max: int = 5
    """Random policy: most control steps an action is held."""

    def __post_init__(self) -> None:
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ConfigError(f"--episodes {self.episodes!r}: must be an integer >= 1")
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: must be >= 0")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"--workers {self.workers}: must be in 1..64")
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy {self.policy!r}: valid: {', '.join(POLICIES)}")
        if self.policy == "mpc" and not self.model:
            raise ConfigError("--policy mpc needs --model PATH (an exported .onnx)")
        if not 1 <= self.hold_min <= self.hold_max:
            raise ConfigError(f"hold steps {self.hold_min}..{self.hold_max}: need 1 <= min <= max")


def episode_seeds(seed: int, n: int) -> list[int]:
    """Independent per-episode seeds derived from one collection seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def random_actions(
    rng: np.random.Generator, steps: int, hold_min: int, hold_max: int
) -> np.ndarray:
    """[steps, 2] actions uniform in the bounds, each held for hold_min..hold_max steps."""
    out = np.empty((steps, ACTION_DIM))
    t = 0
    while t < steps:
        hold = int(rng.integers(hold_min, hold_max + 1))
        out[t : t + hold] = rng.uniform(ACTION_LOW_REV_S, ACTION_HIGH_REV_S, ACTION_DIM)
        t += hold
    return out


def check_model(path: Path) -> None:
    """Raises a one-line ``ModelFileError`` naming ``path`` unless the MPC policy can use it.

    Runs in the parent before any worker starts: the file must pass the robot's own
    loader (docs/model-format.md) and run in onnxruntime as the workers will run it.
    """
    from offboard_training.mpc import MpcPolicy
    from onboard.model import load_model

    load_model(path)
    MpcPolicy(Path(path))


# One environment (and planner) per worker process, made once. A failure here is kept and
# raised by the first job: an initializer that raises makes multiprocessing.Pool respawn
# the worker forever instead of reporting the error.
_WORKER: dict = {}


def _worker_init(config: CollectConfig) -> None:
    _WORKER.clear()
    try:
        from firmware_bridge.sim.env import RoachEnv

        _WORKER["env"] = RoachEnv()
        _WORKER["config"] = config
        if config.policy == "mpc":
            from offboard_training.mpc import MpcPolicy

            _WORKER["mpc"] = MpcPolicy(Path(config.model))
    except RoachError as exc:
        _WORKER["error"] = exc
    except Exception as exc:  # sent to the parent pickled, so made a plain one-line error
        _WORKER["error"] = DatasetError(f"collection worker could not start: {one_line(exc)}")


def _rollout(job: tuple[int, int, str]) -> dict:
    """Runs one episode and writes its file; returns its manifest entry."""
    from firmware_bridge.sim.conditions import parse_condition, sample_training_condition

    if "error" in _WORKER:
        raise _WORKER["error"]
    index, ep_seed, folder = job
    config: CollectConfig = _WORKER["config"]
    env = _WORKER["env"]
    rng = np.random.default_rng(ep_seed)
    cond = parse_condition(config.condition) if config.condition else sample_training_condition(rng)
    obs, _info = env.reset(seed=ep_seed, options={"condition": cond})
    max_steps = int(getattr(env.spec, "max_episode_steps", None) or 110)
    planned = random_actions(rng, max_steps, config.hold_min, config.hold_max)
    policy = _WORKER.get("mpc")
    if policy is not None:
        policy.reset(rng)
    states = [np.asarray(obs, dtype=np.float64)]
    actions: list[np.ndarray] = []
    for t in range(max_steps):
        a = planned[t] if policy is None else policy.act(states, actions)
        obs, _r, terminated, truncated, _info = env.step(np.asarray(a, dtype=np.float32))
        states.append(np.asarray(obs, dtype=np.float64))
        actions.append(np.asarray(a, dtype=np.float64))
        if terminated or truncated:
            break
    name = episode_filename(index)
    write_episode(
        Path(folder) / name,
        Episode(np.stack(states), np.stack(actions), str(cond), ep_seed, config.policy),
    )
    return {
        "file": name,
        "condition": str(cond),
        "seed": ep_seed,
        "steps": len(actions),
        "policy": config.policy,
    }


def run_in_workers(
    config: CollectConfig, jobs: list[tuple[int, int, str]], out: Path
) -> Iterator[dict]:
    """Yields the manifest entry of each job as ``config.workers`` processes finish them.

    The first failure in any worker ends the pool (its other jobs are dropped) and comes
    out here as a one-line ``RoachError``.
    """
    ctx = mp.get_context("spawn")
    with ctx.Pool(config.workers, initializer=_worker_init, initargs=(config,)) as pool:
        try:
            yield from pool.imap_unordered(_rollout, jobs)
        except RoachError:
            raise
        except Exception as exc:
            raise DatasetError(f"{out}: a collection worker failed: {one_line(exc)}") from None


def collect(config: CollectConfig, out: Path, progress: bool = True) -> dict:
    """Collects ``config.episodes`` episodes into the folder ``out``; returns the manifest info."""
    if config.policy == "mpc":
        check_model(Path(config.model))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    jobs = [(i, s, str(out)) for i, s in enumerate(episode_seeds(config.seed, config.episodes))]
    entries: list[dict] = []
    bar = tqdm(total=len(jobs), desc="collect", unit="ep", disable=not progress)
    try:
        if config.workers == 1:
            _worker_init(config)
            for job in jobs:
                entries.append(_rollout(job))
                bar.update()
        else:
            for entry in run_in_workers(config, jobs, out):
                entries.append(entry)
                bar.update()
    finally:
        bar.close()
    entries.sort(key=lambda e: e["file"])
    wall = time.monotonic() - t0
    steps = sum(e["steps"] for e in entries)
    info = {
        **asdict(config),
        "code_version": code_version(),
        "wall_s": round(wall, 2),
        "transitions": steps,
    }
    write_manifest(out, entries, info)
    return info
