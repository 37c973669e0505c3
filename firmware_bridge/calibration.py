"""The robot file: what ``roach calibrate`` measured on one robot, in TOML, used by the
state builder, ``roach run`` and ``roach collect`` instead of the nominal constants.

```toml
[encoder]      # sign: +1 if the count rises as the leg turns forward
left_sign = 1
right_sign = -1
left_counts_per_rev = 65536.0
right_counts_per_rev = 65536.0
[imu]
gyro_bias_rad_s = [0.0, 0.0, 0.05]   # subtracted from every gyro reading
accel_gravity_m_s2 = 9.81            # |accel| at rest (a check: 9.81 +-5 %)
[power]
battery_scale = 1.0                  # true / reported battery voltage
bemf_v_per_rev_s = [0.05, 0.05]      # back-EMF per leg rev/s, left and right
[motors]
left_gain = 1.0                      # leg rate at equal duty, relative to the mean of both
right_gain = 1.0
[pid]
rise_time_s = 0.05                   # 10 % -> 90 % of a 2 -> 6 rev/s step
overshoot = 0.1                      # peak above the step, as a fraction of it
[pose]
yaw_offset_rad = 0.0                 # tracker heading minus the direction of travel
```

Every key is optional (the nominal value); an unknown table or key, a wrong type or an
out-of-range value is a ``ConfigError`` of one line naming the file and the key.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from firmware_bridge.records import ENCODER_COUNTS_PER_REV
from robot_contract.errors import ConfigError


@dataclass(frozen=True)
class SensorCalibration:
    """What turns raw telemetry into state numbers (firmware_bridge.state_builder)."""

    encoder_sign: tuple[int, int] = (1, 1)
    counts_per_rev: tuple[float, float] = (float(ENCODER_COUNTS_PER_REV),) * 2
    gyro_bias_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    battery_scale: float = 1.0


@dataclass(frozen=True)
class RobotFile:
    """One robot's calibration (the TOML above)."""

    sensors: SensorCalibration = field(default_factory=SensorCalibration)
    accel_gravity_m_s2: float = 9.80665
    bemf_v_per_rev_s: tuple[float, float] = (0.0, 0.0)
    motor_gain: tuple[float, float] = (1.0, 1.0)
    pid_rise_time_s: float = 0.0
    pid_overshoot: float = 0.0
    yaw_offset_rad: float = 0.0
    source: str = "<nominal>"


# (table, key) -> (attribute path, kind, low, high)
_KEYS: dict[tuple[str, str], tuple[str, str, float, float]] = {
    ("encoder", "left_sign"): ("sensors.encoder_sign.0", "sign", -1, 1),
    ("encoder", "right_sign"): ("sensors.encoder_sign.1", "sign", -1, 1),
    ("encoder", "left_counts_per_rev"): ("sensors.counts_per_rev.0", "float", 100, 1e7),
    ("encoder", "right_counts_per_rev"): ("sensors.counts_per_rev.1", "float", 100, 1e7),
    ("imu", "gyro_bias_rad_s"): ("sensors.gyro_bias_rad_s", "vec3", -1, 1),
    ("imu", "accel_gravity_m_s2"): ("accel_gravity_m_s2", "float", 1, 100),
    ("power", "battery_scale"): ("sensors.battery_scale", "float", 0.5, 2),
    ("power", "bemf_v_per_rev_s"): ("bemf_v_per_rev_s", "vec2", 0, 10),
    ("motors", "left_gain"): ("motor_gain.0", "float", 0.1, 10),
    ("motors", "right_gain"): ("motor_gain.1", "float", 0.1, 10),
    ("pid", "rise_time_s"): ("pid_rise_time_s", "float", 0, 10),
    ("pid", "overshoot"): ("pid_overshoot", "float", 0, 10),
    ("pose", "yaw_offset_rad"): ("yaw_offset_rad", "float", -math.pi, math.pi),
}


def load_robot_file(path: str | Path) -> RobotFile:
    """The robot file at ``path``; ConfigError (one line) for anything wrong in it."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: robot file not found (write one with roach calibrate)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the robot file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    values: dict[str, Any] = {}
    tables = sorted({t for t, _ in _KEYS})
    for table, body in raw.items():
        if table not in tables or not isinstance(body, dict):
            raise ConfigError(f"{p}: unknown table [{table}]; valid: {', '.join(tables)}")
        for key, value in body.items():
            spec = _KEYS.get((table, key))
            if spec is None:
                keys = [k for t, k in _KEYS if t == table]
                raise ConfigError(
                    f"{p}: unknown key '{key}' in [{table}]; valid: {', '.join(keys)}"
                )
            values[spec[0]] = _check(f"{p}: [{table}] {key}", value, *spec[1:])
    return _build(values, str(p))


def _check(where: str, v: Any, kind: str, lo: float, hi: float) -> Any:
    n = {"vec3": 3, "vec2": 2}.get(kind)
    items = v if n else [v]
    ok = (not n or (isinstance(v, list) and len(v) == n)) and all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
        and lo <= x <= hi for x in items
    )  # fmt: skip
    if kind == "sign":
        ok = ok and v in (-1, 1)
    if not ok:
        shape = f"a list of {n} numbers" if n else ("1 or -1" if kind == "sign" else "a number")
        raise ConfigError(f"{where} = {v!r}: valid: {shape} in {lo:g}..{hi:g}")
    return tuple(float(x) for x in v) if n else (int(v) if kind == "sign" else float(v))


def _build(values: dict[str, Any], source: str) -> RobotFile:
    nominal = RobotFile()
    top: dict[str, Any] = {f.name: getattr(nominal, f.name) for f in fields(RobotFile)}
    sens: dict[str, Any] = {
        f.name: getattr(nominal.sensors, f.name) for f in fields(SensorCalibration)
    }
    for path, v in values.items():
        parts = path.split(".")
        target = sens if parts[0] == "sensors" else top
        name = parts[1] if parts[0] == "sensors" else parts[0]
        if parts[-1].isdigit():
            cur = list(target[name])
            cur[int(parts[-1])] = v
            target[name] = tuple(cur)
        else:
            target[name] = v
    top["sensors"] = SensorCalibration(**sens)
    top["source"] = source
    return RobotFile(**top)


def write_robot_file(path: str | Path, r: RobotFile, header: str = "") -> None:
    """Writes ``r`` as TOML, atomically (a temp file, then a rename)."""
    s = r.sensors

    def vec(xs: tuple[float, ...]) -> str:
        return "[" + ", ".join(f"{x:.6g}" for x in xs) + "]"

    text = "".join(f"# {line}\n" for line in header.splitlines()) + (
        "[encoder]\n"
        f"left_sign = {s.encoder_sign[0]}\nright_sign = {s.encoder_sign[1]}\n"
        f"left_counts_per_rev = {s.counts_per_rev[0]:.6g}\n"
        f"right_counts_per_rev = {s.counts_per_rev[1]:.6g}\n\n"
        f"[imu]\ngyro_bias_rad_s = {vec(s.gyro_bias_rad_s)}\n"
        f"accel_gravity_m_s2 = {r.accel_gravity_m_s2:.6g}\n\n"
        f"[power]\nbattery_scale = {s.battery_scale:.6g}\n"
        f"bemf_v_per_rev_s = {vec(r.bemf_v_per_rev_s)}\n\n"
        f"[motors]\nleft_gain = {r.motor_gain[0]:.6g}\nright_gain = {r.motor_gain[1]:.6g}\n\n"
        f"[pid]\nrise_time_s = {r.pid_rise_time_s:.6g}\novershoot = {r.pid_overshoot:.6g}\n\n"
        f"[pose]\nyaw_offset_rad = {r.yaw_offset_rad:.6g}\n"
    )
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot write the robot file ({exc.strerror or exc})") from None
