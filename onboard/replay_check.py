"""Re-running a logged run's decisions tick by tick (``roach replay LOG --check``).

The controller ``roach run`` ran is rebuilt from the log's ``/roach/run`` record (config,
model, clock, hello) and fed each tick's logged telemetry and pose through the same
``Controller.tick``: state, history, adaptation, planning, command timing and the go /
no-go rules are the loop's own code, not a copy. What a replay cannot re-live is this
computer's clock, so it comes from the log: the tick's ``t_monotonic_s`` is "now" for
the freshness rules and for START_MOTORS, and a sample's ``received_monotonic_s`` is
when it arrived. The commands the replay sends are compared with the logged ones, bit
for bit; the first tick that differs is named with the difference.

What the log must hold for this (docs/log-format.md): the config (with the planner's
seed), the model file's sha256 and the planner's random state at the first tick
(``/roach/run`` ``replay``), which this module writes (``replay_record``) and checks.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Robot, Stamped
from onboard import safety
from onboard.clock import Clock
from onboard.config import ControllerConfig, LoopConfig, config_from_dict
from onboard.logging_mcap import TOPIC_TICK, RunLog, TickLogWriter
from onboard.loop import Controller, build_controller
from onboard.model import LoadedModel
from onboard.motors import MotorSupervisor
from onboard.planner import Planner
from onboard.warmup import warm_up
from robot_contract.errors import ConfigError


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def planner_rng_state(planner: Planner) -> dict[str, Any] | None:
    """The optimiser's random generator state (numpy's bit-generator dict), or None."""
    rng = getattr(planner.optimizer, "_rng", None)
    return None if rng is None else dict(rng.bit_generator.state)


def replay_record(model_path: str | Path, ctl: Controller) -> dict[str, Any]:
    """The ``/roach/run`` ``replay`` entry, written before the first tick."""
    return {
        "model_sha256": file_sha256(model_path),
        "planner_rng_state": planner_rng_state(ctl.planner),
    }


# -- the replayed robot, time and clock ------------------------------------------------


@dataclass
class ReplayTime:
    """The logged "now" of the tick being replayed (monotonic seconds of the run)."""

    now_s: float = 0.0


class ReplayRobot(Robot):
    """Serves one logged tick's telemetry and pose; every command is taken and dropped."""

    def __init__(self, hello: dict[str, object]) -> None:
        self._hello = dict(hello)
        self._tel: Stamped[Telemetry] | None = None
        self._pose: Stamped[Pose] | None = None

    def serve(self, tick: dict[str, Any]) -> None:
        t, p = tick.get("telemetry"), tick.get("pose")
        self._tel = None if t is None else Stamped(_record(Telemetry, t), *_stamp(t))
        self._pose = None if p is None else Stamped(_record(Pose, p), *_stamp(p))

    def hello(self, timeout_s: float = 1.0) -> dict[str, object]:
        return dict(self._hello)

    def set_command_timeout(self, timeout_ms: int) -> None: ...
    def start_telemetry(self, rate_hz: float) -> None: ...
    def stop_telemetry(self) -> None: ...
    def start_motors(self) -> None: ...
    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None: ...
    def stop(self) -> None: ...
    def emergency_stop(self) -> None: ...
    def close(self) -> None: ...

    def latest_telemetry(self) -> Stamped[Telemetry] | None:
        return self._tel

    def latest_pose(self) -> Stamped[Pose] | None:
        return self._pose


def _record(cls: type, d: dict[str, Any]) -> Any:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{k: (math.nan if d[k] is None else d[k]) for k in names})


def _stamp(d: dict[str, Any]) -> tuple[float, int]:
    return float(d["received_monotonic_s"]), int(d.get("status_flags") or 0)


class ReplayClock(Clock):
    """The run's freshness rules on the logged times; ticks as fast as they compute.

    Realtime: the age rule with the tick's logged start as now. Lockstep: a sample must
    be newer than the previous tick's and have arrived after the last command; the
    command's send time is not logged, so the tick's start in which it was sent stands
    in for it (the sample answering a command arrives after that tick began).
    """

    def __init__(self, cfg: LoopConfig, lockstep: bool, now: ReplayTime) -> None:
        super().__init__(cfg)
        self.lockstep, self.now = lockstep, now
        self.confirm_s = 0.0 if lockstep else cfg.command_timeout_ms / 1000.0

    def wait_tick(self, robot: Robot, stopping: Any) -> bool:
        return True

    def _fault(
        self, now_s: float, tel: Stamped[Telemetry] | None, pose: Stamped[Pose] | None
    ) -> str | None:
        if self.lockstep:
            return safety.input_fault(
                self.now.now_s, tel, pose, math.inf, math.inf,
                self._prev_tel_us, self._prev_pose_us, self._sent_at_s,
            )  # fmt: skip
        return safety.input_fault(
            self.now.now_s, tel, pose, self.cfg.telemetry_stale_s, self.cfg.pose_stale_s
        )

    def sending(self) -> None:
        self._sent_at_s = self.now.now_s

    def late_s(self, tick_start_s: float) -> float:
        return 0.0

    def keep_time(self, robot: Robot, nominal: np.ndarray) -> None:
        if self.lockstep:
            self.sending()


class ReplayMotors(MotorSupervisor):
    """The motor supervisor with START_MOTORS stamped by the logged clock."""

    def __init__(self, robot: Robot, confirm_s: float, now: ReplayTime) -> None:
        super().__init__(robot, confirm_s)
        self.now = now

    def _started(self) -> None:
        super()._started()
        self._start_sent_s = self.now.now_s


class TickCapture(TickLogWriter):
    """Keeps the replayed ticks' records in memory instead of writing a file."""

    def __init__(self) -> None:
        self.ticks: list[dict[str, Any]] = []

    def write(self, topic: str, payload: dict[str, Any]) -> None:
        if topic == TOPIC_TICK:
            self.ticks.append(payload)

    def close(self, summary: dict[str, Any] | None = None) -> None: ...


# -- the check ----------------------------------------------------------------------------


@dataclass
class TickDiff:
    """A tick whose replayed command is not the logged one."""

    tick: int
    logged: tuple[str, float | None, float | None]
    """(kind, left, right) rev/s as logged."""
    replayed: tuple[str, float | None, float | None]
    differs_by_rev_s: float
    """Largest difference of the two sides (inf when one is a stop and the other not)."""

    def describe(self) -> str:
        return (
            f"tick {self.tick}: logged {_fmt(self.logged)}, replayed {_fmt(self.replayed)} "
            f"(differs by {self.differs_by_rev_s:.6g} rev/s)"
        )


@dataclass
class CheckResult:
    ticks: int
    diffs: list[TickDiff] = field(default_factory=list)
    max_diff_rev_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    """What the log lacked or held differently (model sha256, planner random state)."""

    @property
    def exact(self) -> bool:
        return not self.diffs

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "exact": self.exact,
            "differing_ticks": len(self.diffs),
            "first_difference": None if self.exact else self.diffs[0].describe(),
            "first_differing_tick": None if self.exact else self.diffs[0].tick,
            "max_diff_rev_s": self.max_diff_rev_s if math.isfinite(self.max_diff_rev_s) else None,
            "notes": self.notes,
        }

    def describe(self) -> str:
        head = f"replay check: {self.ticks} ticks"
        if self.exact:
            text = f"{head}, every command reproduced exactly"
        else:
            text = f"{head}, {len(self.diffs)} commands differ; first at {self.diffs[0].describe()}"
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])


def _fmt(c: tuple[str, float | None, float | None]) -> str:
    kind, left, right = c
    return kind if left is None or right is None else f"{kind} ({left!r}, {right!r})"


def _command(t: dict[str, Any]) -> tuple[str, float | None, float | None]:
    c = t.get("command") or {}
    return (str(c.get("kind")), c.get("left_rev_s"), c.get("right_rev_s"))


def _diff(a: tuple[str, Any, Any], b: tuple[str, Any, Any]) -> float:
    if a == b:
        return 0.0
    if a[0] != b[0] or None in (a[1], a[2], b[1], b[2]):
        return math.inf
    return max(abs(float(a[1]) - float(b[1])), abs(float(a[2]) - float(b[2])))


def logged_config(log: RunLog) -> ControllerConfig:
    """The run's config from its ``/roach/run`` record (ConfigError if absent)."""
    if not log.run or not isinstance(log.run.get("config"), dict):
        raise ConfigError("the log has no /roach/run record with the run's config")
    raw = {k: v for k, v in log.run["config"].items() if k != "source"}
    return config_from_dict(raw, source="the log's /roach/run config")


def check_log(log: RunLog, model: LoadedModel) -> CheckResult:
    """Re-runs every logged tick through the controller ``roach run`` builds from the
    log's config and ``model``; compares the commands."""
    cfg = logged_config(log)
    run = log.run or {}
    lockstep = bool(run.get("lockstep"))
    robot = ReplayRobot(run.get("hello") or {})
    capture = TickCapture()
    ctl = build_controller(robot, model, cfg, log=capture, lockstep=lockstep)
    now = ReplayTime()
    ctl.clock = ReplayClock(cfg.loop, lockstep, now)
    ctl.motors = ReplayMotors(robot, ctl.clock.confirm_s, now)
    result = CheckResult(ticks=len(log.ticks))
    _compare_record(run, model, ctl, result)
    if not log.ticks:
        return result
    warm_up(model, ctl.adapter, ctl.objective, cfg)
    first = log.ticks[0]
    robot.serve(first)
    starts = [first["t_monotonic_s"]] + [
        first[k]["received_monotonic_s"] for k in ("telemetry", "pose") if first.get(k)
    ]
    now.now_s = min(starts) - 1e-6  # the motors started before tick 0's samples came
    ctl.start()
    for t in log.ticks:
        now.now_s = float(t["t_monotonic_s"])
        robot.serve(t)
        ctl.tick(int(t["tick"]))
        logged, replayed = _command(t), _command(capture.ticks[-1])
        d = _diff(logged, replayed)
        if d:
            result.diffs.append(TickDiff(int(t["tick"]), logged, replayed, d))
            result.max_diff_rev_s = max(result.max_diff_rev_s, d)
    return result


def _compare_record(
    run: dict[str, Any], model: LoadedModel, ctl: Controller, result: CheckResult
) -> None:
    rec = run.get("replay") or {}
    logged_sha = rec.get("model_sha256")
    if logged_sha is None:
        result.notes.append("the log does not record the model's sha256; not checked")
    elif logged_sha != file_sha256(model.path):
        result.notes.append(f"model {model.path} is not the file the run used (sha256 differs)")
    state = rec.get("planner_rng_state")
    if state is None:
        result.notes.append("the log does not record the planner's random state; not checked")
    elif state != planner_rng_state(ctl.planner):
        result.notes.append("the planner's random state at the first tick differs from the log's")
