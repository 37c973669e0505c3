"""The robot file (firmware_bridge/calibration.py): written and read back, one-line
errors, and the state builder's use of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge.calibration import (
    RobotFile,
    SensorCalibration,
    load_robot_file,
    write_robot_file,
)
from firmware_bridge.records import GYRO_RAD_S_PER_LSB, Pose, Telemetry
from firmware_bridge.state_builder import StateBuilder
from robot_contract.errors import ConfigError


def test_round_trip(tmp_path: Path) -> None:
    """What is written is what is read (to the 6 significant digits written)."""
    r = RobotFile(
        sensors=SensorCalibration((-1, 1), (65000.0, 66000.0), (0.01, -0.02, 0.05), 0.97),
        bemf_v_per_rev_s=(0.25, 0.26), motor_gain=(0.9, 1.1), yaw_offset_rad=0.17,
    )  # fmt: skip
    write_robot_file(tmp_path / "r.toml", r, "a header\nline two")
    back = load_robot_file(tmp_path / "r.toml")
    assert back.sensors == r.sensors and back.motor_gain == r.motor_gain
    assert back.yaw_offset_rad == pytest.approx(0.17) and back.bemf_v_per_rev_s == (0.25, 0.26)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[encoder]\nleft_sign = 2\n", "left_sign = 2: valid: 1 or -1"),
        ("[imu]\ngyro_bias_rad_s = [0, 0]\n", "a list of 3 numbers"),
        ("[motor]\nleft_gain = 1\n", "unknown table [motor]"),
        ("[pose]\nyaw = 1\n", "unknown key 'yaw' in [pose]; valid: yaw_offset_rad"),
        ("[pose\n", "not valid TOML"),
    ],
)
def test_bad_robot_files_are_one_line(tmp_path: Path, text: str, words: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_robot_file(p)
    assert words in str(info.value) and str(p) in str(info.value)


def test_state_builder_applies_sign_counts_bias_and_battery() -> None:
    """A reversed left encoder at 60000 counts/rev, a gyro z bias and a battery scale turn
    the raw telemetry into the true leg rate, yaw rate and voltage."""
    cal = SensorCalibration((-1, 1), (60000.0, 65536.0), (0.0, 0.0, 0.05), 0.5)
    b = StateBuilder(cal)
    pose = Pose(0, 0, 0, 0, 0, 0, 0)

    def tel(t_us: int, left: int) -> Telemetry:
        gz = round(0.25 / GYRO_RAD_S_PER_LSB)
        return Telemetry(0, t_us, left, 0, 0, 0, 0, 0, 0, 0, gz, 0, 0, 4096, 0, 0, 4000)

    b.build(tel(0, 0), pose)
    s = b.build(tel(100_000, -30000), Pose(0, 0, 0, 0, 0, 0, 100_000))
    assert s[19] == pytest.approx(5.0)  # 30000 counts forward in 0.1 s at 60000 / rev
    assert s[14] == pytest.approx(0.2, abs=GYRO_RAD_S_PER_LSB)
    assert s[23] == pytest.approx(2.0)
    nominal = StateBuilder().build(tel(0, 0), pose)
    assert nominal[14] == pytest.approx(0.25, abs=GYRO_RAD_S_PER_LSB) and nominal[23] == 4.0
