"""Controller configuration: one frozen dataclass per concern, loaded from TOML.

A config file has one table per concern (``[loop]``, ``[link]``, ``[adaptation]``,
``[planner]``, ``[task]``); every key is optional and defaults to the value below.
Everything is validated once, before the robot moves: an unknown table or key, a wrong
type or an out-of-range value raises ``ConfigError`` with one line naming the file, the
key and what would be valid. ``configs/default.toml`` lists every key; the reference is
docs/controller.md.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_bridge.link_health import LinkHealthConfig
from firmware_bridge.pose.source import PoseConfig
from onboard.adaptation import CHANGE_GAIN, CHANGE_RATIO, CHANGE_ROWS, MODES
from onboard.command import COMMAND_TIMINGS
from onboard.planner import PlannerConfig
from onboard.plausibility import PlausibilityConfig
from onboard.resources import ResourceConfig
from onboard.tasks import TaskConfig
from robot_contract.errors import ConfigError
from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S, CONTROL_PERIOD_S


def _rng(lo: float, hi: float, doc: str) -> dict[str, Any]:
    """Field metadata: the closed valid range and a one-line description with units."""
    return {"range": (lo, hi), "doc": doc}


def _choice(choices: tuple[str, ...], doc: str) -> dict[str, Any]:
    return {"choices": choices, "doc": doc}


@dataclass(frozen=True)
class LoopConfig:
    """Timing and safety of the control loop."""

    rate_hz: float = field(default=1.0 / CONTROL_PERIOD_S, metadata=_rng(1.0, 100.0, "Hz"))
    """Control rate. The models are trained at 10 Hz; other rates mismatch them."""
    steps: int = field(default=110, metadata=_rng(1, 10_000_000, "control ticks"))
    """Ticks per episode (110 = 11 s at 10 Hz, as published)."""
    telemetry_stale_s: float = field(default=0.25, metadata=_rng(0.005, 5.0, "s"))
    """Telemetry older than this (by this computer's clock) makes the tick command a stop."""
    pose_stale_s: float = field(default=0.25, metadata=_rng(0.005, 5.0, "s"))
    """A pose older than this makes the tick command a stop."""
    command_timeout_ms: int = field(default=300, metadata=_rng(20, 10_000, "ms"))
    """Set on the robot at start: it stops its motors if no command arrives this long.
    Must exceed the control period (1000 / rate_hz), or the board trips between ticks."""
    command_timing: str = field(
        default="pipelined", metadata=_choice(COMMAND_TIMINGS, "command timing")
    )
    """pipelined (published): the command planned at tick k is sent at the start of tick
    k+1 and is every candidate's first step, so compute time never shifts it; immediate:
    the plan's first step is sent as soon as planning ends (onboard/command.py)."""
    lockstep_timeout_s: float = field(default=2.0, metadata=_rng(0.01, 60.0, "s"))
    """Lockstep mode: how long a tick waits for telemetry newer than the last tick's."""
    log_sync_s: float = field(default=0.5, metadata=_rng(0.01, 1.0, "s"))
    """A background thread fsyncs the log this often; every message is flushed at once."""
    blas_threads: int = field(default=1, metadata=_rng(1, 64, "threads"))
    """OpenBLAS threads for the planning matmuls; 1 is steadiest on a loaded small CPU."""
    action_low_rev_s: float = field(default=ACTION_LOW_REV_S, metadata=_rng(0.0, 20.0, "rev/s"))
    """Lowest leg-velocity command, both legs; must equal the model's ``roach.action_low``."""
    action_high_rev_s: float = field(default=ACTION_HIGH_REV_S, metadata=_rng(0.0, 20.0, "rev/s"))
    """Highest leg-velocity command, both legs; must equal the model's ``roach.action_high``."""

    @property
    def pipelined(self) -> bool:
        """The planner fixes its first step to the command in flight (``command_timing``)."""
        return self.command_timing == "pipelined"

    def __post_init__(self) -> None:
        if not self.action_low_rev_s < self.action_high_rev_s:
            raise ConfigError(
                f"action_low_rev_s={self.action_low_rev_s} must be below "
                f"action_high_rev_s={self.action_high_rev_s}"
            )
        period_ms = 1000.0 / self.rate_hz
        if not self.command_timeout_ms > period_ms:
            raise ConfigError(
                f"command_timeout_ms={self.command_timeout_ms} must exceed the control period "
                f"1000 / rate_hz = {period_ms:g} ms; valid: above {period_ms:g} to 10000 ms"
            )


@dataclass(frozen=True)
class LinkConfig:
    """The serial link to the motor board."""

    port: str = field(default="", metadata={"doc": "serial device, e.g. /dev/ttyAMA0"})
    """Serial device path (the ``--port`` option overrides it)."""
    baud: int = field(default=1_000_000, metadata=_rng(9600, 4_000_000, "bit/s"))
    telemetry_rate_hz: float = field(default=100.0, metadata=_rng(1.0, 1000.0, "Hz"))
    """Rate at which the board streams telemetry records."""
    hello_timeout_s: float = field(default=1.0, metadata=_rng(0.05, 30.0, "s"))
    """How long the start-up who-am-I round trip may take."""


@dataclass(frozen=True)
class AdaptationConfig:
    """Online adaptation of the dynamics model."""

    mode: str = field(default="dyn-eval", metadata=_choice(MODES, "adaptation mode"))
    """dyn-eval: keep stepping the adapted weights from tick to tick (with the GrBAL model
    the best controller measured, docs/evaluation.md); grbal: reset to the meta-learned
    weights and take one step each tick (as published); none: never adapt (MB)."""
    M: int | None = field(default=None, metadata=_rng(1, 1000, "transitions"))
    """Past window length; absent = the model's ``roach.M``."""
    inner_lr: float | None = field(default=None, metadata=_rng(0.0, 100.0, "SGD step size"))
    """Adaptation step size; absent = 0.05 in dyn-eval, the model's ``roach.inner_lr`` in
    grbal."""
    change_ratio: float = field(default=CHANGE_RATIO, metadata=_rng(0.0, 1000.0, "error ratio"))
    """The change rule (onboard/adaptation.py): a change is detected when each of the newest
    ``change_rows`` transitions is predicted this many times worse than the rest of the
    window; 0 = off."""
    change_rows: int = field(default=CHANGE_ROWS, metadata=_rng(1, 499, "transitions"))
    change_gain: float = field(default=CHANGE_GAIN, metadata=_rng(0.0, 100.0, "factor"))
    """Step-size factor while the window holds only transitions since a detected change."""


@dataclass(frozen=True)
class ControllerConfig:
    """Everything ``roach run`` needs besides the model file."""

    loop: LoopConfig = field(default_factory=LoopConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """Random shooting as published by default; with pipelined command timing every
    candidate's first step is the command in flight (onboard.planner.Planner)."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """The path (straight, left, right, zigzag, circle, figure8), its size and the cost
    weights (onboard.tasks)."""
    plausibility: PlausibilityConfig = field(default_factory=PlausibilityConfig)
    """Physical bounds of the inputs and the model's predictions (onboard.plausibility)."""
    resources: ResourceConfig = field(default_factory=ResourceConfig)
    link_health: LinkHealthConfig = field(default_factory=LinkHealthConfig)
    """When the link's counters become events (firmware_bridge.link_health)."""
    """Memory and step-time budgets checked at start (onboard.resources)."""
    pose: PoseConfig = field(default_factory=PoseConfig)
    """Where the pose comes from and how its frame is aligned (docs/pose.md)."""
    source: str = "<defaults>"
    """Where the values came from (file path), for error messages and the log."""

    def __post_init__(self) -> None:
        if self.loop.command_timing == "pipelined" and self.planner.horizon < 2:
            raise ConfigError(
                f"{self.source}: [planner] horizon={self.planner.horizon} must be >= 2 with "
                '[loop] command_timing = "pipelined" (step 0 is the command in flight); '
                'valid: horizon >= 2, or command_timing = "immediate"'
            )


MOVED_KEYS: dict[tuple[str, str], str] = {
    ("planner", "fix_first_action"): (
        '[loop] command_timing = "pipelined" (for true) or "immediate" (for false)'
    ),
}
"""Keys of older config files that now live elsewhere: (table, key) -> what to write."""

SECTIONS: dict[str, type] = {
    "loop": LoopConfig,
    "link": LinkConfig,
    "adaptation": AdaptationConfig,
    "planner": PlannerConfig,
    "task": TaskConfig,
    "plausibility": PlausibilityConfig,
    "resources": ResourceConfig,
    "link_health": LinkHealthConfig,
    "pose": PoseConfig,
}


def load_config(path: str | Path | None = None) -> ControllerConfig:
    """Reads and validates a TOML config; ``None`` gives the defaults."""
    if path is None:
        return ControllerConfig()
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return config_from_dict(raw, source=str(p))


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> ControllerConfig:
    """Validates a parsed TOML document (tables of keys) into a ControllerConfig."""
    parts: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown table [{section}]; valid: {', '.join(SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: '{section}' must be a table [{section}]")
        parts[section] = build_section(SECTIONS[section], table, source, section)
    return ControllerConfig(**parts, source=source)


def with_overrides(cfg: ControllerConfig, **overrides: Any) -> ControllerConfig:
    """Returns cfg with ``section__key=value`` overrides applied and validated.

    Used for command-line options (``--steps`` -> ``loop__steps``, ``--task`` ->
    ``task__name``); ``None`` values are skipped so an absent option keeps the file's value.
    """
    tables: dict[str, dict[str, Any]] = {}
    changed: dict[str, Any] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        section, key = name.split("__")
        tables.setdefault(section, {})[key] = value
    for section, table in tables.items():
        current = dataclasses.asdict(getattr(cfg, section))
        current.update(table)
        changed[section] = build_section(SECTIONS[section], current, "command line", section)
    return dataclasses.replace(cfg, **changed)


def build_section(cls: type, table: dict[str, Any], source: str, section: str) -> Any:
    """Checks the keys, types and ranges of one table and builds its dataclass."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{source}: [{section}] {key}"
        if (section, key) in MOVED_KEYS:
            raise ConfigError(
                f"{source}: [{section}] {key} has moved; write {MOVED_KEYS[section, key]}"
            )
        if key not in fields:
            raise ConfigError(
                f"{source}: unknown key '{key}' in [{section}]; valid: {', '.join(fields)}"
            )
        values[key] = _check_value(where, value, hints[key], fields[key].metadata)
    try:
        return cls(**values)
    except (ConfigError, ValueError, TypeError) as exc:
        # PlannerConfig validates itself; keep its one-line reason, add where it came from.
        raise ConfigError(f"{source}: [{section}] {_one_line(exc)}") from None


def _check_value(where: str, value: Any, hint: Any, meta: Any) -> Any:
    allowed = _allowed_types(hint)
    if value is None and type(None) in allowed:
        return None
    kind = _value_kind(value, allowed)
    if kind is None:
        names = " or ".join(t.__name__ for t in allowed if t is not type(None))
        got = type(value).__name__
        raise ConfigError(f"{where} = {value!r}: wrong type {got}, expected {names}")
    value = kind(value)
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{where} = {value!r}: valid: {', '.join(meta['choices'])}")
    if "range" in meta:
        lo, hi = meta["range"]
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ConfigError(
                f"{where} = {value!r}: out of range, valid {lo} to {hi} ({meta['doc']})"
            )
    return value


def _allowed_types(hint: Any) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return (str,)
    return (hint,) if isinstance(hint, type) else (object,)


def _value_kind(value: Any, allowed: tuple[type, ...]) -> type | None:
    """The type to convert to, or None; bools are never numbers, ints may be floats."""
    if isinstance(value, bool):
        return bool if bool in allowed else None
    for t in allowed:
        if t is object:
            return type(value)
        if t is int and isinstance(value, int):
            return int
        if t is float and isinstance(value, int | float):
            return float
        if t is str and isinstance(value, str):
            return str
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def describe(cfg: ControllerConfig) -> dict[str, Any]:
    """The config as plain data (for the log)."""
    out = {name: dataclasses.asdict(getattr(cfg, name)) for name in SECTIONS}
    return out | {"source": cfg.source}
