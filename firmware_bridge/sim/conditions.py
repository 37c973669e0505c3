"""Simulation conditions: terrain, slope, payload, tow, missing legs, motor gains, pose
miscalibration and battery, each a named knob parsed from ``key=value[@T]`` pairs.

A condition string is comma-separated pairs, e.g. ``"terrain=turf,missing_leg=RF@4,payload_g=8"``;
the empty string is the nominal robot on carpet. A value ending in ``@T`` switches on T seconds
into the episode; before that the key has its default. A numeric key can also change
gradually: ``A~B@T0:T1`` holds A until T0, moves linearly to B by T1 and holds B after
(e.g. ``friction=0.9~0.3@2:8``, the ground getting slippery over six seconds). The same
keys can come from a TOML file (values may be numbers, strings such as ``"RF@4"`` or
``"0.9~0.3@2:8"``, or a list of leg names for ``missing_leg``).
Every bad input raises ``ConfigError`` with one line naming the key and what is valid.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_contract.errors import ConfigError

LEG_NAMES: tuple[str, ...] = ("LF", "LM", "LR", "RF", "RM", "RR")
"""Left/right, front/middle/rear."""


@dataclass(frozen=True)
class Surface:
    """Ground contact parameters of a terrain."""

    friction: float  # sliding friction coefficient
    softness: float  # 0 = rigid contact, 1 = very soft (see robot.py for the mapping)
    roughness_mm: float  # peak-to-peak height of the small-scale height field, mm


TERRAINS: dict[str, Surface] = {
    "carpet": Surface(friction=0.9, softness=0.35, roughness_mm=1.0),
    "styrofoam": Surface(friction=0.3, softness=0.1, roughness_mm=0.2),
    "turf": Surface(friction=1.1, softness=0.8, roughness_mm=4.0),
    "gravel": Surface(friction=0.7, softness=0.05, roughness_mm=7.0),
    "ice": Surface(friction=0.08, softness=0.0, roughness_mm=0.0),
}
TRAINING_TERRAINS: tuple[str, ...] = ("carpet", "styrofoam", "turf")
"""The terrains the training data covers; ``gravel`` and ``ice`` are never trained on."""

MAX_SWITCH_S = 3600.0
RAMP_STEP_S = 0.05
"""A gradual change is applied to the simulation in steps of this many seconds."""


@dataclass(frozen=True)
class KeySpec:
    """What a condition key means and which values it accepts."""

    doc: str
    kind: str  # "float", "terrain" or "legs"
    lo: float = 0.0
    hi: float = 0.0
    unit: str = ""

    def valid(self) -> str:
        if self.kind == "terrain":
            return "one of " + ", ".join(TERRAINS)
        if self.kind == "legs":
            return "one or more of " + " ".join(LEG_NAMES) + " joined by '+'"
        return f"{self.lo:g}..{self.hi:g}" + (f" {self.unit}" if self.unit else "")


def _num(lo: float, hi: float, unit: str, doc: str) -> KeySpec:
    return KeySpec(doc, "float", lo, hi, unit)


CONDITION_KEYS: dict[str, KeySpec] = {
    "terrain": KeySpec("ground preset (carpet, styrofoam, turf are the training ones)", "terrain"),
    "friction": _num(0.02, 2.0, "", "sliding friction coefficient (overrides terrain)"),
    "softness": _num(0.0, 1.0, "", "contact softness, 0 rigid .. 1 very soft (overrides terrain)"),
    "roughness_mm": _num(0.0, 10.0, "mm", "peak-to-peak height of the bumps (overrides terrain)"),
    "slope_deg": _num(-20.0, 20.0, "deg", "ground tilt along the start heading, negative downhill"),
    "payload_g": _num(0.0, 30.0, "g", "mass carried on the body"),
    "payload_x_mm": _num(-30.0, 30.0, "mm", "payload offset forward of the body centre"),
    "payload_y_mm": _num(-15.0, 15.0, "mm", "payload offset to the left of the body centre"),
    "tow_g": _num(0.0, 40.0, "g", "mass of a sled dragged behind on a 15 cm tether"),
    "missing_leg": KeySpec("legs whose ground contact is gone", "legs"),
    "gain_left": _num(0.2, 2.0, "", "left motor torque per commanded duty, relative to nominal"),
    "gain_right": _num(0.2, 2.0, "", "right motor torque per commanded duty, relative to nominal"),
    "yaw_offset_deg": _num(-180.0, 180.0, "deg", "motion-capture yaw error (reported minus true)"),
    "pos_offset_mm": _num(-100.0, 100.0, "mm", "tracked point's offset ahead of the body centre"),
    "battery_v": _num(3.0, 4.35, "V", "battery open-circuit voltage at the start"),
}  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """One simulation condition. Defaults are the nominal robot on carpet.

    ``friction``/``softness``/``roughness_mm`` of None take the terrain preset's value.
    ``switch_s`` holds ``(key, T)`` for keys that switch on at T seconds; before T the key
    has its default value. ``ramp_s`` holds ``(key, A, T0, T1)`` for keys that move
    linearly from A (until T0) to the field's value (from T1). ``at(t)`` is the
    condition in force at time t.
    """

    terrain: str = "carpet"
    friction: float | None = None
    softness: float | None = None
    roughness_mm: float | None = None
    slope_deg: float = 0.0
    payload_g: float = 0.0
    payload_x_mm: float = 0.0
    payload_y_mm: float = 0.0
    tow_g: float = 0.0
    missing_leg: tuple[str, ...] = ()
    gain_left: float = 1.0
    gain_right: float = 1.0
    yaw_offset_deg: float = 0.0
    pos_offset_mm: float = 0.0
    battery_v: float = 3.9
    switch_s: tuple[tuple[str, float], ...] = ()
    ramp_s: tuple[tuple[str, float, float, float], ...] = ()

    def surface(self) -> Surface:
        """The ground parameters in force: the terrain preset with any raw knob applied."""
        base = TERRAINS[self.terrain]
        return Surface(
            friction=base.friction if self.friction is None else self.friction,
            softness=base.softness if self.softness is None else self.softness,
            roughness_mm=base.roughness_mm if self.roughness_mm is None else self.roughness_mm,
        )

    def at(self, t_s: float) -> Condition:
        """The condition in force at ``t_s`` seconds: keys not yet switched on are default,
        ramping keys at their value of the moment."""
        pending: dict[str, Any] = {k: _DEFAULTS[k] for k, t in self.switch_s if t_s < t}
        for key, start, t0, t1 in self.ramp_s:
            end = getattr(self, key)
            frac = min(max((t_s - t0) / (t1 - t0), 0.0), 1.0)
            pending[key] = end if frac >= 1.0 else start + (end - start) * frac
        if not pending:
            return self
        return dataclasses.replace(self, switch_s=(), ramp_s=(), **pending)

    def switch_times(self) -> tuple[float, ...]:
        """Sorted distinct times at which the condition changes, seconds (a gradual change
        every RAMP_STEP_S from its start to its end)."""
        times = {t for _, t in self.switch_s}
        for _, _, t0, t1 in self.ramp_s:
            n = max(1, math.ceil((t1 - t0) / RAMP_STEP_S - 1e-9))
            times.update(t0 + (t1 - t0) * i / n for i in range(n + 1))
        return tuple(sorted(times))

    def onset_s(self) -> float | None:
        """When the first change begins (a switch or the start of a ramp), or None."""
        times = [t for _, t in self.switch_s] + [t0 for _, _, t0, _ in self.ramp_s]
        return min(times) if times else None

    def __str__(self) -> str:
        """The canonical condition string (parses back to an equal Condition)."""
        when = dict(self.switch_s)
        ramps = {key: (start, t0, t1) for key, start, t0, t1 in self.ramp_s}
        parts = []
        for key in CONDITION_KEYS:
            value = getattr(self, key)
            if key in ramps:
                start, t0, t1 = ramps[key]
                parts.append(f"{key}={start:g}~{value:g}@{t0:g}:{t1:g}")
                continue
            if value == _DEFAULTS[key] and key not in when:
                continue
            text = (
                "+".join(value)
                if key == "missing_leg"
                else f"{value:g}"
                if isinstance(value, float)
                else str(value)
            )
            parts.append(f"{key}={text}" + (f"@{when[key]:g}" if key in when else ""))
        return ",".join(parts)  # fmt: skip


_DEFAULTS: dict[str, object] = {f.name: f.default for f in dataclasses.fields(Condition)}


def parse_condition(text: str) -> Condition:
    """Parses ``"key=value[@T],..."``; the empty string is nominal. Raises ConfigError."""
    pairs: list[tuple[str, str]] = []
    for raw in text.split(","):
        pair = raw.strip()
        if not pair and not text.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"malformed condition pair {pair!r}: expected key=value[@T] "
                "(e.g. terrain=turf,missing_leg=RF@4)"
            )
        pairs.append((key.strip(), value.strip()))
    return _build(pairs, where="condition:")


def load_condition_file(path: str | Path) -> Condition:
    """Reads a TOML file of condition keys (top-level table). Raises ConfigError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"condition file {str(path)!r}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"condition file {str(path)!r}: invalid TOML ({exc})") from None
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "+".join(value)
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            spec = CONDITION_KEYS.get(key)
            valid = spec.valid() if spec else "a known key"
            raise ConfigError(
                f"condition file {str(path)!r}: key {key!r} has a {type(value).__name__} value; "
                f"valid: {valid}"
            )
        pairs.append((key, str(value)))
    return _build(pairs, where=f"condition file {str(path)!r}:")


TRAINING_VARIATIONS: tuple[str, ...] = ("terrain", "dynamics")
"""What changes between training episodes: ``terrain`` is the published data (a training
terrain with its natural variation); ``dynamics`` adds, per episode, the kinds of change
the robot must adapt to, so that meta-training practises them (see sample_training_condition)."""


def sample_training_condition(rng: np.random.Generator, variation: str = "terrain") -> Condition:
    """A training terrain with its natural variation: friction +-15 %, softness +-0.1,
    roughness +-30 %, battery 3.7..4.1 V. Used by data collection.

    ``variation="dynamics"`` also varies, each with its own chance per episode: both motor
    gains (0.6..1.4, half the episodes), a payload up to 15 g anywhere on the body (a
    third), a slope of up to 8 degrees either way (a third), and the battery over
    3.4..4.1 V. Missing legs, pose miscalibration, towing and the gravel and ice
    terrains are never sampled: they stay unseen by training.
    """
    if variation not in TRAINING_VARIATIONS:
        raise ConfigError(
            f"training variation {variation!r}: valid: {', '.join(TRAINING_VARIATIONS)}"
        )
    terrain = TRAINING_TERRAINS[int(rng.integers(len(TRAINING_TERRAINS)))]
    s = TERRAINS[terrain]
    condition = Condition(
        terrain=terrain,
        friction=round(s.friction * float(rng.uniform(0.85, 1.15)), 3),
        softness=round(float(np.clip(s.softness + rng.uniform(-0.1, 0.1), 0.0, 1.0)), 3),
        roughness_mm=round(s.roughness_mm * float(rng.uniform(0.7, 1.3)), 3),
        battery_v=round(float(rng.uniform(3.7, 4.1)), 3),
    )
    if variation == "terrain":
        return condition
    changes: dict[str, Any] = {"battery_v": round(float(rng.uniform(3.4, 4.1)), 3)}
    if rng.random() < 0.5:
        changes["gain_left"] = round(float(rng.uniform(0.6, 1.4)), 3)
        changes["gain_right"] = round(float(rng.uniform(0.6, 1.4)), 3)
    if rng.random() < 1 / 3:
        changes["payload_g"] = round(float(rng.uniform(2.0, 15.0)), 2)
        changes["payload_x_mm"] = round(float(rng.uniform(-30.0, 30.0)), 1)
        changes["payload_y_mm"] = round(float(rng.uniform(-10.0, 10.0)), 1)
    if rng.random() < 1 / 3:
        changes["slope_deg"] = round(float(rng.uniform(-8.0, 8.0)), 2)
    return dataclasses.replace(condition, **changes)


def as_condition(condition: Condition | str | None) -> Condition:
    """Accepts a Condition, a condition string, or None (nominal)."""
    if condition is None:
        return Condition()
    if isinstance(condition, Condition):
        return condition
    if isinstance(condition, str):
        return parse_condition(condition)
    raise ConfigError(f"condition must be a string or Condition, not {type(condition).__name__}")


def _build(pairs: list[tuple[str, str]], where: str) -> Condition:
    values: dict[str, object] = {}
    switch: list[tuple[str, float]] = []
    ramps: list[tuple[str, float, float, float]] = []
    for key, raw in pairs:
        spec = CONDITION_KEYS.get(key)
        if spec is None:
            raise ConfigError(
                f"{where} unknown key {key!r}; valid keys: {', '.join(CONDITION_KEYS)}"
            )
        if key in values:
            raise ConfigError(f"{where} key {key!r} given twice")
        value_text, at, t_text = raw.partition("@")
        if "~" in value_text or ":" in t_text:
            ramps.append(_parse_ramp(key, spec, value_text.strip(), at, t_text, where))
            values[key] = _parse_value(key, spec, value_text.split("~")[-1].strip(), where)
            continue
        if at:
            t = _parse_float(t_text)
            if t is None or not 0.0 <= t <= MAX_SWITCH_S:
                raise ConfigError(
                    f"{where} key {key!r}: bad switch time {'@' + t_text!r}; "
                    f"valid: @T with T in 0..{MAX_SWITCH_S:g} s"
                )
            switch.append((key, t))
        values[key] = _parse_value(key, spec, value_text.strip(), where)
    return Condition(**values, switch_s=tuple(switch), ramp_s=tuple(ramps))  # type: ignore[arg-type]


def _parse_ramp(
    key: str, spec: KeySpec, value_text: str, at: str, t_text: str, where: str
) -> tuple[str, float, float, float]:
    """``A~B`` with ``@T0:T1``: (key, A, T0, T1); B is parsed by the caller."""
    form = f"{where} key {key!r}: a gradual change is A~B@T0:T1 (e.g. friction=0.9~0.3@2:8)"
    if spec.kind != "float":
        raise ConfigError(f"{where} key {key!r}: only numeric keys change gradually")
    start_text, tilde, _end = value_text.partition("~")
    t0_text, colon, t1_text = t_text.partition(":")
    if not tilde or not at or not colon:
        raise ConfigError(form)
    start = _parse_value(key, spec, start_text.strip(), where)
    t0, t1 = _parse_float(t0_text), _parse_float(t1_text)
    if t0 is None or t1 is None or not 0.0 <= t0 < t1 <= MAX_SWITCH_S:
        raise ConfigError(
            f"{form}; bad times {'@' + t_text!r}: valid 0 <= T0 < T1 <= {MAX_SWITCH_S:g} s"
        )
    assert isinstance(start, float)
    return (key, start, t0, t1)


def _parse_value(key: str, spec: KeySpec, text: str, where: str) -> object:
    if spec.kind == "terrain":
        if text not in TERRAINS:
            raise ConfigError(
                f"{where} key {key!r}: unknown terrain {text!r}; valid: {spec.valid()}"
            )
        return text
    if spec.kind == "legs":
        legs = tuple(p.strip() for p in text.split("+"))
        bad = [p for p in legs if p not in LEG_NAMES]
        if bad or len(set(legs)) != len(legs):
            what = f"unknown leg {bad[0]!r}" if bad else f"repeated leg in {text!r}"
            raise ConfigError(f"{where} key {key!r}: {what}; valid: {spec.valid()}")
        return tuple(sorted(legs, key=LEG_NAMES.index))
    value = _parse_float(text)
    if value is None:
        raise ConfigError(f"{where} key {key!r}: {text!r} is not a number; valid: {spec.valid()}")
    if not spec.lo <= value <= spec.hi:
        raise ConfigError(f"{where} key {key!r}: {text} is out of range; valid: {spec.valid()}")
    return value


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
