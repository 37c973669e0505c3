"""`roach calibrate` against the realtime fake with planted miscalibrations: each is found
within its stated tolerance, the nominal fake shows none, and `roach run --robot` with
the written file reads the miscalibrated board right."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
from cli_helpers import fake_robot, run_roach

from firmware_bridge.calibration import load_robot_file
from firmware_bridge.records import GYRO_RAD_S_PER_LSB
from onboard.logging_mcap import read_log

PLANTED = ("--miscal", "encoder_left=-1,gyro_bias_z=0.05",
           "--condition", "gain_left=0.7,yaw_offset_deg=10")  # fmt: skip
COUNTS_TOLERANCE = 0.02  # of 65536
GYRO_TOLERANCE_RAD_S = 0.01  # the fake's body is not perfectly still: ~0.006 rad/s at rest
YAW_TOLERANCE_DEG = 2.0


@pytest.fixture(scope="module")
def robot_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The planted fake publishes its pose over UDP (the tracker's path); the sound one
    sends POSE frames."""
    out = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        udp = f"udp:127.0.0.1:{s.getsockname()[1]}"
    for name, plants, pose in (("planted", (*PLANTED, "--pose-out", udp), udp),
                               ("nominal", (), "serial")):  # fmt: skip
        path = tmp_path_factory.mktemp("cal") / f"{name}.toml"
        with fake_robot("--clock", "realtime", *plants) as (_s, pty):
            res = run_roach("calibrate", "--port", pty, "--out", str(path), "--battery-v", "3.8",
                            "--pose", pose)  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        print(res.stdout)
        out[name] = path
    return out


def test_planted_miscalibrations_are_recovered(robot_files: dict[str, Path]) -> None:
    """Reversed left encoder: sign -1; counts/rev 65536 +-2 %; gyro z bias 0.05 +-0.01
    rad/s; tracker yaw 10 +-2 deg; left motor at 0.7 torque: the right leg runs more than
    15 % faster at equal duty; battery scale 3.8 V / 3.9 V reported +-1 %."""
    r = load_robot_file(robot_files["planted"])
    s = r.sensors
    assert s.encoder_sign == (-1, 1)
    assert all(abs(c / 65536 - 1) <= COUNTS_TOLERANCE for c in s.counts_per_rev)
    assert abs(s.gyro_bias_rad_s[2] - 0.05) <= GYRO_TOLERANCE_RAD_S
    assert abs(math.degrees(r.yaw_offset_rad) - 10.0) <= YAW_TOLERANCE_DEG
    assert r.motor_gain[1] / r.motor_gain[0] > 1.15
    assert abs(s.battery_scale - 3.8 / 3.9) <= 0.01
    assert abs(r.accel_gravity_m_s2 - 9.80665) <= 0.05 * 9.80665


def test_the_nominal_fake_shows_no_miscalibration(robot_files: dict[str, Path]) -> None:
    """The same steps on the sound fake: signs +1, no gyro bias, no yaw offset, equal gains
    (within the same tolerances; gains within 5 %)."""
    r = load_robot_file(robot_files["nominal"])
    assert r.sensors.encoder_sign == (1, 1)
    assert max(abs(b) for b in r.sensors.gyro_bias_rad_s) <= GYRO_TOLERANCE_RAD_S
    assert abs(math.degrees(r.yaw_offset_rad)) <= YAW_TOLERANCE_DEG
    assert abs(r.motor_gain[1] / r.motor_gain[0] - 1) <= 0.05


def test_run_with_the_robot_file_reads_the_board_right(
    robot_files: dict[str, Path], random_model_file: Path, tmp_path: Path
) -> None:
    """On the miscalibrated board the left leg rate reads negative and the yaw rate is off
    by the bias; with --robot the state has the left leg turning forward and no bias."""
    rates = {}
    for name, extra in (("without", ()), ("with", ("--robot", str(robot_files["planted"])))):
        log_path = tmp_path / f"{name}.mcap"
        with fake_robot("--clock", "lockstep", "--miscal", "encoder_left=-1,gyro_bias_z=0.05"
                        ) as (_s, pty):  # fmt: skip
            res = run_roach("run", "--port", pty, "--model", str(random_model_file),
                            "--steps", "15", "--lockstep", "--log", str(log_path), "--quiet",
                            *extra)  # fmt: skip
        assert res.returncode == 0, res.stderr
        ticks = [t for t in read_log(log_path).ticks[5:] if t["state"] is not None]
        # The state's yaw rate minus the raw gyro reading: the bias taken off, if any.
        taken_off = [t["telemetry"]["gyro_z"] * GYRO_RAD_S_PER_LSB - t["state"][14] for t in ticks]
        rates[name] = (min(t["state"][19] for t in ticks), sum(taken_off) / len(taken_off))
    assert rates["without"][0] < 0 < rates["with"][0]
    assert rates["without"][1] == pytest.approx(0.0, abs=1e-9)
    assert rates["with"][1] == pytest.approx(0.05, abs=GYRO_TOLERANCE_RAD_S)
