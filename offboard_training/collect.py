"""Rollouts in the simulator, in parallel worker processes, written as a dataset folder.

Random policy: each action is uniform in the bounds (2..9 rev/s per side) and held for a
random 1 to 5 control steps, so the data holds both steady gaits and changes.

MPC policy (``ControllerPolicy``): the robot's own controller, built from onboard's
parts (numpy and Numba, no onnxruntime or PyTorch), drives the simulator with a trained
model file, so the data lands where that controller drives (the aggregation iterations
of offboard_training/pipeline.py). Each step it does what ``onboard.loop.Controller``
does in a tick: track the state on the task's path, push it into the transition
history, adapt as the robot would adapt this model (``grbal`` for a GrBAL model,
``none`` for MB), plan by random shooting with ``onboard.objective.Objective``'s cost,
with pipelined command timing: the command planned at step k is applied at step k+1,
every candidate's first step is the command in flight, and the first command is the
nominal action (middle of the bounds). A plan without a finite cost is replaced by the
nominal action. The task of an episode is one of ``onboard.tasks.TASKS`` (or the one
``task`` names), placed at the episode's first state.

Conditions: by default one ``sample_training_condition`` per episode (a training
terrain with its natural variation); ``condition`` fixes one condition string for every
episode instead (used for evaluation sets under conditions never seen in training).
Everything random in an episode (condition, actions, task, planner) is drawn from that
episode's seed, so a dataset depends on the collection seed only, not on the workers.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
from robot_contract.errors import ConfigError, ModelFileError, RoachError
from robot_contract.state import ACTION_DIM, ACTION_HIGH_REV_S, ACTION_LOW_REV_S

if TYPE_CHECKING:  # onboard (and Numba) load only where the MPC policy runs
    from onboard.model import LoadedModel
    from onboard.objective import Objective
    from onboard.planner import Planner

POLICIES = ("random", "mpc")
ADAPTATION_MODE_OF_ALGORITHM = {"grbal": "grbal", "mb": "none"}
"""How the robot adapts a model of each ``roach.algorithm``, and so the MPC policy too."""


@dataclass(frozen=True)
class CollectConfig:
    """One collection run."""

    episodes: int
    seed: int = 0
    workers: int = 2
    policy: str = "random"
    """``random`` or ``mpc`` (needs ``model``)."""
    model: str = ""
    """Model file (docs/model-format.md) the MPC policy adapts and plans with."""
    condition: str = ""
    """Fixed condition string for every episode; empty = sample training conditions."""
    variation: str = "terrain"
    """What the sampled training conditions vary (firmware_bridge.sim.TRAINING_VARIATIONS):
    ``terrain`` (the published data) or ``dynamics`` (also motor gains, payload, slope,
    battery)."""
    hold_min: int = 1
    """Random policy: fewest control steps an action is held."""
    hold_max: int = 5
    """Random policy: most control steps an action is held."""
    task: str = ""
    """MPC policy: the path to follow (one of onboard.tasks.TASKS); empty = one drawn
    per episode."""
    candidates: int = 500
    """MPC policy: action sequences sampled per step (random shooting)."""
    horizon: int = 5
    """MPC policy: steps per sequence, the first being the command in flight (>= 2)."""

    def __post_init__(self) -> None:
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ConfigError(f"--episodes {self.episodes!r}: must be an integer >= 1")
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: must be >= 0")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"--workers {self.workers}: must be in 1..64")
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy {self.policy!r}: valid: {', '.join(POLICIES)}")
        if self.variation not in ("terrain", "dynamics"):
            raise ConfigError(f"--vary {self.variation!r}: valid: terrain, dynamics")
        if self.policy == "mpc" and not self.model:
            raise ConfigError("--policy mpc needs --model PATH (an exported .onnx)")
        if not 1 <= self.hold_min <= self.hold_max:
            raise ConfigError(f"hold steps {self.hold_min}..{self.hold_max}: need 1 <= min <= max")
        if not 1 <= self.candidates <= 100_000:
            raise ConfigError(f"--candidates {self.candidates}: must be in 1..100000")
        if not 2 <= self.horizon <= 100:
            raise ConfigError(
                f"--horizon {self.horizon}: must be in 2..100 (step 0 is the command in flight)"
            )
        if self.task:
            from onboard.tasks import TASKS

            if self.task not in TASKS:
                raise ConfigError(f"--task {self.task!r}: valid: {', '.join(TASKS)}")


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


def adaptation_mode(model: LoadedModel) -> str:
    """The adaptation mode the robot uses for ``model``: ``grbal`` or ``none`` (MB)."""
    mode = ADAPTATION_MODE_OF_ALGORITHM.get(model.meta.algorithm)
    if mode is None:
        raise ModelFileError(
            f"model file {model.path}: roach.algorithm {model.meta.algorithm!r} has no "
            f"adaptation mode; valid: {', '.join(ADAPTATION_MODE_OF_ALGORITHM)}"
        )
    return mode


def check_model(path: Path) -> LoadedModel:
    """The model the MPC policy would use, or a one-line ``ModelFileError`` naming ``path``.

    Runs in the parent before any worker starts: the file must pass the robot's own
    loader (docs/model-format.md, cross-checked against onnxruntime) and name an
    algorithm the robot knows how to adapt.
    """
    from onboard.model import load_model

    model = load_model(path)
    adaptation_mode(model)
    return model


class ControllerPolicy:
    """The onboard controller's parts as a collection policy (see the module docstring).

    Args:
        model: the loaded model; adapted per ``adaptation_mode``.
        candidates, horizon: random-shooting size (the horizon counts the fixed first step).
        task: the task of every episode, or "" to draw one per episode.
    """

    def __init__(self, model: LoadedModel, candidates: int, horizon: int, task: str = "") -> None:
        from onboard.adaptation import Adapter
        from onboard.command import CommandTiming
        from onboard.history import TransitionHistory
        from onboard.tasks import TASKS, TaskConfig

        self.model = model
        self.adapter = Adapter(model, adaptation_mode(model))
        self.history = TransitionHistory(self.adapter.M)
        self.candidates, self.horizon = candidates, horizon
        self.tasks = (task,) if task else TASKS
        self.task_cfg = TaskConfig()
        self.low = np.full(ACTION_DIM, ACTION_LOW_REV_S, np.float64)
        self.high = np.full(ACTION_DIM, ACTION_HIGH_REV_S, np.float64)
        self.nominal = 0.5 * (self.low + self.high)
        self.fallbacks = 0
        """Plans of this episode without a finite cost (replaced by the nominal action)."""
        self.timing = CommandTiming("pipelined", self.nominal)
        self.objective: Objective | None = None
        self.planner: Planner | None = None

    def reset(self, rng: np.random.Generator) -> str:
        """Starts an episode: draws its task and planner seed from ``rng``; returns the task."""
        from onboard.objective import Objective
        from onboard.planner import PlannerConfig, make_planner

        task = self.tasks[int(rng.integers(len(self.tasks)))]
        cfg = PlannerConfig(
            kind="random",
            n_candidates=self.candidates,
            horizon=self.horizon,
            seed=int(rng.integers(2**32)),
        )
        self.planner = make_planner(cfg, fix_first_action=True)
        self.objective = Objective(self.model, cfg, dataclasses.replace(self.task_cfg, name=task))
        self.adapter.reset()
        self.history.break_chain()
        self.timing.stopped()
        self.fallbacks = 0
        return task

    def act(self, state: np.ndarray) -> np.ndarray:
        """The command [2] applied from ``state`` [24] on: the one planned at the previous
        step (the nominal action at the first). Plans the next one before returning."""
        if self.objective is None or self.planner is None:
            raise RuntimeError("ControllerPolicy.act before reset: no task or planner yet")
        command = self.timing.at_tick_start()
        assert command is not None  # pipelined: last step's plan, the nominal one first
        self.timing.sent(command)
        # Blown-up predictions overflow; a non-finite plan is handled below.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.objective.track(state)
            self.history.push_state(state)
            self.history.push_action(command)
            self.adapter.adapt(*self.history.window(self.adapter.M))
            cost = self.objective.rollout_cost(state, self.adapter.params)
            plan = self.planner.plan(cost, self.timing.in_flight, self.low, self.high)
        planned = np.asarray(plan.action, np.float64)
        if math.isfinite(plan.best_cost) and bool(np.all(np.isfinite(planned))):
            self.timing.after_plan(np.clip(planned, self.low, self.high))
        else:
            self.timing.after_plan(self.nominal)
            self.fallbacks += 1
        return command


# One environment (and policy) per worker process, made once. A failure here is kept and
# raised by the first job: an initializer that raises makes multiprocessing.Pool respawn
# the worker forever instead of reporting the error.
_WORKER: dict = {}


def _worker_init(config: CollectConfig, model: LoadedModel | None = None) -> None:
    """Makes this process's environment and, for ``mpc``, its policy on ``model`` (the
    parent's checked copy; None: loaded here from ``config.model``)."""
    _WORKER.clear()
    try:
        from firmware_bridge.sim.env import RoachEnv

        _WORKER["env"] = RoachEnv()
        _WORKER["config"] = config
        if config.policy == "mpc":
            from onboard.blas import set_blas_threads
            from onboard.model import load_model

            # One BLAS thread, as the robot plans: the workers already fill the cores,
            # and every process then computes the same products in the same order.
            set_blas_threads(1)
            model = load_model(config.model) if model is None else model
            _WORKER["mpc"] = ControllerPolicy(model, config.candidates, config.horizon, config.task)
    except RoachError as exc:
        _WORKER["error"] = exc
    except Exception as exc:  # sent to the parent pickled, so made a plain one-line error
        _WORKER["error"] = DatasetError(f"collection worker could not start: {one_line(exc)}")


def _rollout(job: tuple[int, int, str]) -> dict:
    """Runs one episode and writes its file; returns its manifest entry."""
    entry, episode = _episode(job)
    write_episode(Path(job[2]) / entry["file"], episode)
    return entry


def _episode(job: tuple[int, int, str]) -> tuple[dict, Episode]:
    """Runs one episode in this worker; returns its manifest entry and the episode."""
    from firmware_bridge.sim.conditions import parse_condition, sample_training_condition

    if "error" in _WORKER:
        raise _WORKER["error"]
    index, ep_seed, _folder = job
    config: CollectConfig = _WORKER["config"]
    env = _WORKER["env"]
    rng = np.random.default_rng(ep_seed)
    cond = (
        parse_condition(config.condition)
        if config.condition
        else sample_training_condition(rng, config.variation)
    )
    obs, _info = env.reset(seed=ep_seed, options={"condition": cond})
    max_steps = int(getattr(env.spec, "max_episode_steps", None) or 110)
    policy: ControllerPolicy | None = _WORKER.get("mpc")
    entry: dict = {}
    if policy is None:
        planned = random_actions(rng, max_steps, config.hold_min, config.hold_max)
    else:
        entry["task"] = policy.reset(rng)
    states = [np.asarray(obs, dtype=np.float64)]
    actions: list[np.ndarray] = []
    for t in range(max_steps):
        a = planned[t] if policy is None else policy.act(states[-1])
        obs, _r, terminated, truncated, _info = env.step(np.asarray(a, dtype=np.float32))
        states.append(np.asarray(obs, dtype=np.float64))
        actions.append(np.asarray(a, dtype=np.float64))
        if terminated or truncated:
            break
    if policy is not None:
        entry["plan_fallbacks"] = policy.fallbacks
    episode = Episode(np.stack(states), np.stack(actions), str(cond), ep_seed, config.policy)
    return {
        "file": episode_filename(index),
        "condition": str(cond),
        "seed": ep_seed,
        "steps": len(actions),
        "policy": config.policy,
        **entry,
    }, episode


def _cluster_episode(
    job: tuple[int, int, str], run: str, config: CollectConfig, model: LoadedModel | None
) -> tuple[dict, Episode]:
    """One episode as a Ray task: the worker process makes its environment (and policy)
    once per collection ``run``, then keeps it for that run's next episodes. The episode
    comes back through the object store; the driver writes the file."""
    if _WORKER.get("run") != run:
        _worker_init(config, model)
        _WORKER["run"] = run
    return _episode(job)


def run_in_workers(
    config: CollectConfig,
    jobs: list[tuple[int, int, str]],
    out: Path,
    model: LoadedModel | None = None,
) -> Iterator[dict]:
    """Yields the manifest entry of each job as ``config.workers`` processes finish them.

    ``model``: the MPC policy's model, already loaded and checked (sent to each worker
    instead of each loading the file again); None: each worker loads ``config.model``.

    The first failure in any worker ends the pool (its other jobs are dropped) and comes
    out here as a one-line ``RoachError``.
    """
    ctx = mp.get_context("spawn")
    with ctx.Pool(config.workers, initializer=_worker_init, initargs=(config, model)) as pool:
        try:
            yield from pool.imap_unordered(_rollout, jobs)
        except RoachError:
            raise
        except Exception as exc:
            raise DatasetError(f"{out}: a collection worker failed: {one_line(exc)}") from None


def _collect_here(
    config: CollectConfig, jobs: list[tuple[int, int, str]], model: LoadedModel | None
) -> Iterator[dict]:
    """The jobs in this process, as one worker would run them; restores the BLAS threads."""
    from onboard.blas import get_blas_threads, set_blas_threads

    blas_threads = get_blas_threads() if config.policy == "mpc" else None
    try:
        _worker_init(config, model)
        for job in jobs:
            yield _rollout(job)
    finally:
        _WORKER.clear()
        if blas_threads is not None:
            set_blas_threads(blas_threads)


def run_on_cluster(
    config: CollectConfig,
    jobs: list[tuple[int, int, str]],
    out: Path,
    model: LoadedModel | None,
    address: str,
) -> Iterator[dict]:
    """Yields the manifest entry of each job as the cluster at ``address`` finishes it,
    one Ray task per episode (offboard_training/cluster.py); writes each episode's file
    here, so ``out`` need not be shared with the cluster's machines."""
    import uuid

    from offboard_training.cluster import connected, run_tasks

    with connected(address):
        run = uuid.uuid4().hex  # this collection: workers keep their environment per run
        calls = [(job, run) for job in jobs]
        shared = {"config": config, "model": model}
        for _i, (entry, episode) in run_tasks(
            _cluster_episode, calls, what=f"{out}: collection", shared=shared
        ):
            write_episode(out / entry["file"], episode)
            yield entry


def collect(config: CollectConfig, out: Path, progress: bool = True, cluster: str = "") -> dict:
    """Collects ``config.episodes`` episodes into the folder ``out``; returns the manifest info.

    ``cluster``: a Ray address (offboard_training/cluster.py) to run the episodes on
    instead of ``config.workers`` local processes; the dataset is the same either way.
    """
    if cluster:
        from offboard_training.cluster import check_cluster

        check_cluster(cluster)
    model = check_model(Path(config.model)) if config.policy == "mpc" else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    jobs = [(i, s, str(out)) for i, s in enumerate(episode_seeds(config.seed, config.episodes))]
    entries: list[dict] = []
    bar = tqdm(total=len(jobs), desc="collect", unit="ep", disable=not progress)
    try:
        if cluster:
            runner = run_on_cluster(config, jobs, out, model, cluster)
        elif config.workers == 1:
            runner = _collect_here(config, jobs, model)
        else:
            runner = run_in_workers(config, jobs, out, model)
        for entry in runner:
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
        **({"cluster": cluster} if cluster else {}),
    }
    write_manifest(out, entries, info)
    return info
