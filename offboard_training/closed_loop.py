"""Closed-loop evaluation: the onboard controller driving the simulated robot, scored.

Each episode runs what ``roach run --lockstep`` runs, on what ``roach sim --clock
lockstep`` serves, inside this process: a fresh ``SimRobot`` under the condition and
seed, behind the fake motor board on a real pseudo-terminal served by a thread
(``PtyServer``): the Python fake's state machine (``FakeFirmware``) or, with ``board="c"``,
the C firmware at its 1 kHz tick (``CFirmware``, as ``roach sim --board c``). The
controller talks to it through ``SerialRobot`` (pyserial, the real codec) and logs every
tick to MCAP. Nothing of the controller is replaced.

The score uses the simulator's true pose, not the tracked one (a miscalibrated tracker
must not grade itself): the path is the one the controller was given (placed at the
first pose it measured), and each tick's true pose is scored with the planner's own
per-step cost (onboard.tasks, docs/robot.md): ``w_distance * distance + w_progress *
backward progress + w_heading * heading error``. ``cost`` is its mean per tick (lower is
better; forward progress makes it negative).

Recovery time, for a condition that switches on at T (``key=value@T``): the time from T
until the cost's running mean over 1 s is back within 20 % of the same controller's
cost over the same ticks on the intact robot (the condition before T, same seed); None
if it never is. The intact episode runs alongside.

No PyTorch: this needs the ``sim`` and ``onboard`` extras only.
"""

from __future__ import annotations

import dataclasses
import io
import math
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_contract.errors import ConfigError, RoachError

RECOVERY_WINDOW_S = 1.0
"""Running-mean window of the recovery rule, s."""
RECOVERY_TOLERANCE = 0.2
"""Recovered: running mean within this fraction of the intact robot's cost."""
_T95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14)
"""Two-sided 95 % Student t quantiles for 1..14 degrees of freedom (then 2.1 .. 1.96)."""


ALL_TASKS: tuple[str, ...] = ("straight", "left", "right", "zigzag", "circle", "figure8")

SUITES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "paper": (
        ALL_TASKS,
        (
            ("carpet", "terrain=carpet"),
            ("styrofoam", "terrain=styrofoam"),
            ("turf", "terrain=turf"),
            ("gravel (unseen)", "terrain=gravel"),
            ("ice (unseen)", "terrain=ice"),
            ("missing leg", "missing_leg=RF"),
            ("two missing legs", "missing_leg=RF+LM"),
            ("leg lost at 3 s", "missing_leg=RF@3"),
            ("uphill 10 deg", "slope_deg=10"),
            ("downhill 10 deg", "slope_deg=-10"),
            ("payload 15 g", "payload_g=15"),
            ("payload 15 g off-centre", "payload_g=15,payload_x_mm=-30,payload_y_mm=10"),
            ("tow 20 g", "tow_g=20"),
            ("left motor 0.5", "gain_left=0.5"),
            ("right motor 0.5 at 3 s", "gain_right=0.5@3"),
            ("yaw miscalibrated 20 deg", "yaw_offset_deg=20"),
            ("position offset 30 mm", "pos_offset_mm=30"),
            ("low battery 3.4 V", "battery_v=3.4"),
            ("ground slippery from 2 to 8 s", "friction=0.9~0.3@2:8"),
        ),
    ),
    "smoke": (("straight", "left"), (("carpet", ""), ("leg lost at 1 s", "missing_leg=RF@1"))),
}
"""Named sets of (tasks, (label, condition) pairs): ``paper`` is the published kinds of
meta-test condition plus the training terrains; ``smoke`` is a seconds-long check."""


def is_unperturbed(condition: str) -> bool:
    """The nominal robot on one of the training terrains (no oracle: MB is that model)."""
    from firmware_bridge.sim.conditions import TRAINING_TERRAINS

    return condition in {"", *(f"terrain={t}" for t in TRAINING_TERRAINS)}


def perturbed_conditions(suite: str) -> list[str]:
    """A suite's conditions other than the unperturbed training terrains (those that get
    an oracle)."""
    return [c for _, c in SUITES[suite][1] if not is_unperturbed(c)]


@dataclass(frozen=True)
class EvalCase:
    """One episode to run: a controller (model file, adaptation mode), a task, a condition
    (the simulator's syntax, ``@T`` onsets included) and a simulator seed."""

    model: str
    mode: str
    task: str
    condition: str
    seed: int
    steps: int = 110
    inner_lr: float | None = None
    """The adaptation step; None: the mode's default (onboard/adaptation.py)."""
    name: str = ""
    """The controller's label in tables; empty: ``model stem:mode[:step]``. Oracles,
    one model file per condition, share the name ``oracle``."""
    board: str = "python"
    """The fake robot's board logic: ``python`` (FakeFirmware) or ``c`` (the C firmware)."""
    replica: int = 0
    """Which of the controller's model files (training runs of one recipe with different
    seeds) this episode runs; episodes of two controllers pair by (replica, seed)."""

    @property
    def unit(self) -> tuple[int, int]:
        """(replica, seed): what pairs two controllers' episodes and what the confidence
        intervals are over, so training and simulator seeds both count."""
        return (self.replica, self.seed)


@dataclass
class EpisodeScore:
    """What one episode did, scored on the true pose."""

    case: EvalCase
    cost: float
    """Mean per-tick trajectory-following cost (docs/robot.md weights), lower is better."""
    mean_distance_m: float
    max_distance_m: float
    progress_m: float
    progress_fraction: float
    mean_heading_error_rad: float
    ticks: int
    recovery_s: float | None = None
    """Seconds from the onset until recovered (conditions with ``@T`` only); None: no
    onset, or never recovered (see ``recovered``)."""
    recovered: bool | None = None
    """For a condition with an onset: whether the robot recovered within the episode."""
    intact_cost: float | None = None
    """Mean cost of the same controller on the intact robot over the same ticks."""
    step_p50_ms: float = math.nan
    step_p99_ms: float = math.nan
    step_max_ms: float = math.nan
    fallbacks: int = 0
    """Adaptation steps the guard rejected."""
    events: dict[str, int] = field(default_factory=dict)
    stopped_by: str | None = None
    costs: list[float] = field(default_factory=list, repr=False)
    """Per-tick cost (for plots and the recovery rule)."""
    xy: list[tuple[float, float]] = field(default_factory=list, repr=False)
    """True position per tick, m (for plots)."""
    path_xy: list[tuple[float, float]] = field(default_factory=list, repr=False)
    """The controller's path, m."""

    def as_dict(self, traces: bool = False) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if not traces:
            for key in ("costs", "xy", "path_xy"):
                out.pop(key)
        return out


# -- one episode ---------------------------------------------------------------------------


class _TruthRecorder:
    """The simulation as the fake board sees it, noting the true pose of every sample the
    board sends (keyed by the board's millisecond clock, which is the simulation time)."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim
        self.truth: dict[int, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)

    def pose(self) -> Any:
        self.truth[round(self._sim.time_s * 1000)] = self._sim.true_pose()
        return self._sim.pose()


BOARDS = ("python", "c")
"""The fake robot's board logic, as ``roach sim --board``."""


class _InProcessFake:
    """``roach sim --clock lockstep [--board c]`` on a pty served by a thread of this process."""

    def __init__(self, condition: str, seed: int, board: str = "python") -> None:
        from firmware_bridge.fake.firmware import FakeFirmware
        from firmware_bridge.fake.server import PtyServer
        from firmware_bridge.sim.robot import SimRobot

        if board not in BOARDS:
            raise ConfigError(f"--board {board!r} unknown; valid: {', '.join(BOARDS)}")
        self.sim = SimRobot(condition, seed=seed)
        self.recorder = _TruthRecorder(self.sim)
        firmware: Any
        if board == "c":
            from firmware_bridge.fake.c_firmware import CFirmware

            firmware = CFirmware(self.recorder, lockstep=True)
        else:
            firmware = FakeFirmware(self.recorder, lockstep=True)
        self.server = PtyServer(firmware, seed=seed, out=io.StringIO(), log=io.StringIO())
        self.path = self.server.open_pty()  # run() serves this one
        self._thread = threading.Thread(target=self.server.run, name="fake-robot", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.stop()
        self._thread.join(timeout=5.0)


_MODELS: dict[tuple[str, float, float, float], Any] = {}
"""Models loaded in this process, by file and the bounds and rate they were checked against."""


def run_episode(case: EvalCase, config: Any = None, log_dir: str | None = None) -> EpisodeScore:
    """Runs one episode (and, for a condition with an onset, its intact twin) and scores it.

    config: an onboard.config.ControllerConfig (default: the built-in defaults); the
    case's mode, task and steps override it. log_dir: keep the MCAP logs there.
    """
    score = _scored_episode(case, config, log_dir)
    from firmware_bridge.sim.conditions import parse_condition

    cond = parse_condition(case.condition)
    onset_s = cond.onset_s()
    if onset_s is not None:
        intact = dataclasses.replace(case, condition=str(cond.at(0.0)))
        ref = _scored_episode(intact, config, log_dir)
        _score_recovery(score, ref.costs, onset_s, _period_s(config))
    return score


def _period_s(config: Any) -> float:
    from onboard.config import ControllerConfig

    cfg = config or ControllerConfig()
    return 1.0 / cfg.loop.rate_hz


def _scored_episode(case: EvalCase, config: Any, log_dir: str | None) -> EpisodeScore:
    from firmware_bridge.serial_robot import SerialRobot
    from onboard.config import ControllerConfig, with_overrides
    from onboard.logging_mcap import TickLogWriter, read_log
    from onboard.loop import build_controller, load_controller_model

    cfg = with_overrides(
        config or ControllerConfig(),
        adaptation__mode=case.mode,
        adaptation__inner_lr=case.inner_lr,
        task__name=case.task,
        loop__steps=case.steps,
    )
    key = (case.model, cfg.loop.action_low_rev_s, cfg.loop.action_high_rev_s, cfg.loop.rate_hz)
    if key not in _MODELS:
        _MODELS[key] = load_controller_model(case.model, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(log_dir) if log_dir else Path(tmp)
        log_path = folder / _log_name(case)
        fake = _InProcessFake(case.condition, case.seed, case.board)
        try:
            robot = SerialRobot(fake.path)
            try:
                log = TickLogWriter(log_path, sync_every_s=cfg.loop.log_sync_s)
                ctl = build_controller(robot, _MODELS[key], cfg, log=log, lockstep=True)
                try:
                    ctl.start(cfg.link.hello_timeout_s, cfg.link.telemetry_rate_hz)
                    result = ctl.run(cfg.loop.steps)
                finally:
                    ctl.shutdown()
                    log.close(ctl.result.as_dict())
            finally:
                robot.close()
        finally:
            fake.close()
        ticks = read_log(log_path).ticks
    if ctl.objective.task is None:
        raise RoachError(f"episode {case}: the controller never measured a state")
    return _score(case, cfg, ticks, fake.recorder.truth, result, ctl.objective.task.points)


def _log_name(case: EvalCase) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in case.condition) or "nominal"
    board = "" if case.board == "python" else f"-{case.board}"
    replica = f"-r{case.replica}" if case.replica else ""
    return (
        f"{Path(case.model).stem}-{case.mode}-{case.task}-{safe}-s{case.seed}{replica}{board}.mcap"
    )


def _score(
    case: EvalCase,
    cfg: Any,
    ticks: list[dict[str, Any]],
    truth: dict[int, Any],
    result: Any,
    path: np.ndarray,
) -> EpisodeScore:
    """Scores the ticks' true poses against ``path`` [P, 2], the controller's path."""
    from onboard.tasks import Task

    poses = []
    for tick in ticks:
        pose = tick.get("pose")
        if pose is None:
            continue
        true = truth.get(round(pose["timestamp_us"] / 1000))
        if true is not None:
            poses.append(true)
    if not poses:
        raise RoachError(f"episode {case}: no pose reached the controller")
    states = np.zeros((len(poses), 24))
    for i, p in enumerate(poses):
        states[i, 0], states[i, 1], states[i, 2] = p.x, p.y, p.z
        states[i, 10], states[i, 11] = math.cos(p.yaw), math.sin(p.yaw)
    task = Task(cfg=cfg.task, points=np.ascontiguousarray(path, np.float64))
    c = cfg.task
    costs, s_prev = [], 0.0
    for state in states:
        pt = task.track(state)
        costs.append(
            c.w_distance * pt.distance_m
            + c.w_progress * (s_prev - pt.progress_m)
            + c.w_heading * pt.heading_error_rad
        )
        s_prev = pt.progress_m
    m = task.metrics()
    timing = result.timing_summary()
    return EpisodeScore(
        case=case,
        cost=float(np.mean(costs)),
        mean_distance_m=m.mean_distance_m,
        max_distance_m=m.max_distance_m,
        progress_m=m.progress_m,
        progress_fraction=m.progress_fraction,
        mean_heading_error_rad=m.mean_heading_error_rad,
        ticks=result.ticks,
        step_p50_ms=timing.get("step_p50_ms", math.nan),
        step_p99_ms=timing.get("step_p99_ms", math.nan),
        step_max_ms=timing.get("step_max_ms", math.nan),
        fallbacks=int(result.events.get("adapt_fallback", 0)),
        events=dict(result.events),
        stopped_by=result.stopped_by,
        costs=[float(x) for x in costs],
        xy=[(float(s[0]), float(s[1])) for s in states],
        path_xy=[(float(x), float(y)) for x, y in task.points],
    )


def _score_recovery(
    score: EpisodeScore, intact_costs: list[float], onset_s: float, period_s: float
) -> None:
    """Fills ``recovery_s``, ``recovered`` and ``intact_cost`` (module docstring rule)."""
    k0 = max(0, math.ceil(onset_s / period_s - 1e-9))
    n = min(len(score.costs), len(intact_costs))
    if k0 >= n:
        score.recovered, score.intact_cost = None, None
        return
    ref = float(np.mean(intact_costs[k0:n]))
    score.intact_cost = ref
    window = max(1, round(RECOVERY_WINDOW_S / period_s))
    limit = ref + RECOVERY_TOLERANCE * abs(ref)
    costs = np.asarray(score.costs[:n])
    for k in range(k0 + window, n + 1):
        if float(costs[k - window : k].mean()) <= limit:
            score.recovered, score.recovery_s = True, (k - k0) * period_s
            return
    score.recovered, score.recovery_s = False, None


# -- many episodes -------------------------------------------------------------------------


def _worker_init() -> None:
    from onboard.blas import set_blas_threads

    set_blas_threads(1)


def _worker(job: tuple[EvalCase, Any, str | None]) -> EpisodeScore | str:
    case, config, log_dir = job
    try:
        return run_episode(case, config, log_dir)
    except RoachError as exc:
        return f"{case}: {exc}"


_BLAS_SET: list[bool] = []
"""Set once a cluster worker process has taken one BLAS thread (``_worker_init``)."""


def _cluster_worker(case: EvalCase, log_dir: str | None, config: Any) -> EpisodeScore | str:
    """One episode as a Ray task (offboard_training/cluster.py), as a pool worker runs it."""
    if not _BLAS_SET:
        _worker_init()
        _BLAS_SET.append(True)
    return _worker((case, config, log_dir))


def _on_cluster(
    work: Sequence[tuple[EvalCase, Any, str | None]], address: str
) -> Iterator[EpisodeScore | str]:
    """The results of ``work`` in its order, one Ray task per episode, run anywhere."""
    from offboard_training.cluster import connected, run_tasks

    with connected(address):
        results: dict[int, EpisodeScore | str] = {}
        calls = [(case, log_dir) for case, _config, log_dir in work]
        shared = {"config": work[0][1] if work else None}
        next_out = 0  # yielded in case order, as the pool's imap does
        for i, result in run_tasks(_cluster_worker, calls, what="evaluation", shared=shared):
            results[i] = result
            while next_out in results:
                yield results.pop(next_out)
                next_out += 1


def run_cases(
    cases: Sequence[EvalCase],
    config: Any = None,
    *,
    jobs: int = 1,
    log_dir: str | None = None,
    progress: Callable[[int, int, EpisodeScore], None] | None = None,
    cluster: str = "",
) -> list[EpisodeScore]:
    """Runs every case (in ``jobs`` processes, or one Ray task each on the ``cluster`` at
    that address), in order of ``cases``. A RoachError in an episode (a bad model file, a
    condition the simulator refuses) stops the evaluation."""
    if jobs < 1 or jobs > 64:
        raise ConfigError(f"--jobs {jobs} out of range; valid: 1 to 64")
    work = [(case, config, log_dir) for case in cases]
    out: list[EpisodeScore] = []

    def collect(results: Iterable[EpisodeScore | str]) -> None:
        for r in results:
            if isinstance(r, str):
                raise RoachError(r)
            out.append(r)
            if progress is not None:
                progress(len(out), len(work), r)

    if cluster:
        collect(_on_cluster(work, cluster))
    elif jobs == 1:
        _worker_init()
        collect(_worker(w) for w in work)
    else:
        ctx = mp.get_context("spawn")
        with ctx.Pool(jobs, initializer=_worker_init) as pool:
            collect(pool.imap(_worker, work))
    return out


# -- summaries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Episodes of one (controller, task, condition) over seeds (and training replicas)."""

    model: str
    """The model file, or the controller's replica files joined by commas."""
    mode: str
    task: str
    condition: str
    episodes: int
    label: str
    """The controller: ``stem:mode`` (``:step`` when the step was given)."""
    cost_mean: float
    cost_ci95: float
    """Half-width of the 95 % confidence interval of the mean cost over seeds."""
    mean_distance_m: float
    progress_m: float
    recovery_s_mean: float | None
    recovered: int | None
    """Episodes that recovered (conditions with an onset)."""
    fallbacks_mean: float
    step_p50_ms: float


def ci95(values: Sequence[float]) -> float:
    """Half-width of the 95 % confidence interval of the mean (Student t), nan for n < 2."""
    a = np.asarray(values, np.float64)
    if a.size < 2:
        return math.nan
    dof = a.size - 1
    t = _T95[dof - 1] if dof <= len(_T95) else (2.1 if dof < 30 else 1.96)
    return float(t * a.std(ddof=1) / math.sqrt(a.size))


def summarise(scores: Iterable[EpisodeScore]) -> list[Summary]:
    """One summary per (controller, task, condition), in first-seen order."""
    groups: dict[tuple[str, str, str], list[EpisodeScore]] = {}
    for s in scores:
        c = s.case
        groups.setdefault((_label(c), c.task, c.condition), []).append(s)
    out = []
    for (label, task, condition), eps in groups.items():
        model = ",".join(dict.fromkeys(e.case.model for e in eps))
        mode = eps[0].case.mode
        rec = [e.recovery_s for e in eps if e.recovery_s is not None]
        onset = any(e.recovered is not None for e in eps)
        out.append(
            Summary(
                model=model,
                mode=mode,
                task=task,
                condition=condition,
                episodes=len(eps),
                label=label,
                cost_mean=float(np.mean([e.cost for e in eps])),
                cost_ci95=ci95([e.cost for e in eps]),
                mean_distance_m=float(np.mean([e.mean_distance_m for e in eps])),
                progress_m=float(np.mean([e.progress_m for e in eps])),
                recovery_s_mean=float(np.mean(rec)) if rec else None,
                recovered=sum(bool(e.recovered) for e in eps) if onset else None,
                fallbacks_mean=float(np.mean([e.fallbacks for e in eps])),
                step_p50_ms=_nanmedian([e.step_p50_ms for e in eps]),
            )
        )
    return out


def _nanmedian(values: Sequence[float]) -> float:
    a = np.asarray(values, np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


Controller = tuple[str, str, float | None]
"""(model file, adaptation mode, step or None for the file's). Several model files joined
by commas are one controller's training replicas (the same recipe trained with different
seeds): every episode runs once per file, and tables and comparisons pool them."""


def replica_files(model: str) -> list[str]:
    """The model files of a controller's ``model`` field (one, or several comma-separated)."""
    return [f for f in model.split(",") if f]


def controller_label(model: str, mode: str, step: float | None) -> str:
    """``stem:mode[:step]``; with N replica files ``stem[N]:mode[:step]``."""
    files = replica_files(model)
    count = f"[{len(files)}]" if len(files) > 1 else ""
    return f"{Path(files[0]).stem}{count}:{mode}" + ("" if step is None else f":{step:g}")


def expand_cases(
    models: Sequence[Controller],
    tasks: Sequence[str],
    conditions: Sequence[str],
    episodes: int,
    seed: int,
    steps: int = 110,
    board: str = "python",
) -> list[EvalCase]:
    """Every (model, mode) x task x condition x seed (seeds ``seed .. seed + episodes - 1``)
    x replica file, each on ``board`` (``BOARDS``)."""
    if episodes < 1 or episodes > 10_000:
        raise ConfigError(f"--episodes {episodes} out of range; valid: 1 to 10000")
    if board not in BOARDS:
        raise ConfigError(f"--board {board!r} unknown; valid: {', '.join(BOARDS)}")
    out = []
    for model, mode, step in models:
        files = replica_files(model)
        name = controller_label(model, mode, step) if len(files) > 1 else ""
        out += [
            EvalCase(file, mode, task, condition, seed + i, steps, step, name, board, replica)
            for task in tasks
            for condition in conditions
            for i in range(episodes)
            for replica, file in enumerate(files)
        ]
    return out


ORACLE = "oracle"
"""The label of the oracle controllers (offboard_training/oracle.py)."""


def oracle_cases(
    folder: str,
    tasks: Sequence[str],
    conditions: Sequence[str],
    episodes: int,
    seed: int,
    steps: int = 110,
    board: str = "python",
) -> list[EvalCase]:
    """The oracle of every condition that has one in ``folder`` (MB trained on that
    condition, run without adaptation), labelled ``oracle``, on the same seeds."""
    from offboard_training.oracle import oracle_models

    found = oracle_models(folder, conditions)
    return [
        EvalCase(str(found[c]), "none", task, c, seed + i, steps, None, ORACLE, board)
        for task in tasks
        for c in conditions
        if c in found
        for i in range(episodes)
    ]


def check_inputs(
    models: Sequence[Controller], tasks: Sequence[str], conditions: Sequence[str]
) -> None:
    """Every mistake in the inputs as one line, before any episode runs."""
    from firmware_bridge.sim.conditions import parse_condition
    from onboard.adaptation import MODES
    from onboard.model import load_model
    from onboard.tasks import TASKS

    for task in tasks:
        if task not in TASKS:
            raise ConfigError(f"--task {task!r} unknown; valid: {', '.join(TASKS)}")
    for condition in conditions:
        parse_condition(condition)
    for model, mode, step in models:
        if step is not None and not (math.isfinite(step) and 0.0 < step <= 100.0):
            raise ConfigError(f"--model {model}: step {step!r} out of range; valid: 0 to 100")
        if mode not in MODES:
            raise ConfigError(f"--mode {mode!r} unknown; valid: {', '.join(MODES)}")
        for file in replica_files(model):
            load_model(file)


def progress_printer(stream: Any = None) -> Callable[[int, int, EpisodeScore], None]:
    """A progress line on stderr: a bar on a terminal, a line per tenth otherwise."""
    out = stream or sys.stderr
    tty = hasattr(out, "isatty") and out.isatty()
    t0 = time.monotonic()

    def show(done: int, total: int, score: EpisodeScore) -> None:
        elapsed = time.monotonic() - t0
        eta = elapsed / done * (total - done)
        bar = "#" * (30 * done // total)
        line = f"[{bar:<30}] {done}/{total} episodes, {elapsed:.0f} s, about {eta:.0f} s left"
        if tty:
            print("\r" + line, end="\n" if done == total else "", file=out, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(line, file=out, flush=True)

    return show


def iter_table(summaries: Sequence[Summary]) -> Iterator[str]:
    """The summaries as aligned text lines."""
    yield (
        f"{'controller':<20} {'task':<8} {'condition':<28} {'n':>3} "
        f"{'cost':>8} {'±95%':>6} {'dist m':>7} {'prog m':>7} {'recov s':>7} {'fallb':>5}"
    )
    for s in summaries:
        rec = (
            ""
            if s.recovered is None
            else (f"{s.recovery_s_mean:.1f}" if s.recovery_s_mean is not None else "never")
        )
        yield (
            f"{s.label:<20} {s.task:<8} {s.condition or 'nominal':<28} "
            f"{s.episodes:>3} {s.cost_mean:>8.2f} {s.cost_ci95:>6.2f} {s.mean_distance_m:>7.3f} "
            f"{s.progress_m:>7.2f} {rec:>7} {s.fallbacks_mean:>5.1f}"
        )


@dataclass(frozen=True)
class Comparison:
    """Controller A against B on one (task, condition), paired by (replica, seed)."""

    task: str
    condition: str
    a: str
    b: str
    seeds: int
    """Paired episodes: shared (replica, seed) units."""
    diff_mean: float
    """Mean of cost(A) - cost(B) over the shared seeds (negative: A better)."""
    diff_ci95: float
    verdict: str
    """``win`` (A significantly better), ``loss``, ``better``/``worse`` (not significant)."""


def _label(case: EvalCase) -> str:
    return case.name or controller_label(case.model, case.mode, case.inner_lr)


def compare(scores: Iterable[EpisodeScore], a: str, b: str) -> list[Comparison]:
    """A (``stem:mode``) against B per (task, condition), over the (replica, seed) units
    both ran."""
    by: dict[tuple[str, str, str], dict[tuple[int, int], float]] = {}
    for s in scores:
        c = s.case
        by.setdefault((_label(c), c.task, c.condition), {})[c.unit] = s.cost
    out = []
    for (label, task, condition), costs_a in by.items():
        if label != a or (b, task, condition) not in by:
            continue
        costs_b = by[(b, task, condition)]
        seeds = sorted(set(costs_a) & set(costs_b))
        d = [costs_a[k] - costs_b[k] for k in seeds]
        mean, half = float(np.mean(d)), ci95(d)
        significant = math.isfinite(half) and abs(mean) > half
        verdict = (
            ("win" if mean < 0 else "loss") if significant else ("better" if mean < 0 else "worse")
        )
        out.append(Comparison(task, condition, a, b, len(seeds), mean, half, verdict))
    return out


def labels(scores: Iterable[EpisodeScore]) -> list[str]:
    """The controllers (``stem:mode``) in first-seen order."""
    seen: dict[str, None] = {}
    for s in scores:
        seen.setdefault(_label(s.case), None)
    return list(seen)


def comparison_lines(comparisons: Sequence[Comparison]) -> Iterator[str]:
    """Per case A - B with its 95 % interval, then the win/loss counts."""
    if not comparisons:
        return
    a, b = comparisons[0].a, comparisons[0].b
    yield f"{a} - {b} (cost difference, paired by seed and replica; negative: {a} better)"
    for c in comparisons:
        yield (
            f"  {c.task:<8} {c.condition or 'nominal':<40} {c.diff_mean:>+8.2f} "
            f"± {c.diff_ci95:5.2f}  {c.verdict}"
        )
    n = len(comparisons)
    count = {
        v: sum(c.verdict == v for c in comparisons) for v in ("win", "better", "worse", "loss")
    }
    yield (
        f"  {a} better in {count['win'] + count['better']} of {n} cases "
        f"({count['win']} significant), worse in {count['worse'] + count['loss']} "
        f"({count['loss']} significant)"
    )
