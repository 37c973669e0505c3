"""Reliability against the fake robot (docs/reliability.md): a flipped robot and a
teleporting tracker are stopped, damaged and absurd models never drive, a configuration
too big or too slow is refused before the robot moves, the link counters match the faults
the fake injected, and a full disk ends the run cleanly with a readable log."""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import onnx
import pytest
from cli_helpers import (
    ENV,
    REPO,
    SHIPPED_GRBAL,
    fake_robot,
    roach_cmd,
    run_roach,
    write_random_model,
)

from firmware_bridge.fake.firmware import FakeFirmware
from firmware_bridge.fake.server import PtyServer
from firmware_bridge.link_health import (
    LINK_LATENCY,
    LINK_RECONNECT,
    LinkHealth,
    LinkHealthConfig,
    link_line,
)
from firmware_bridge.serial_robot import SerialRobot
from firmware_bridge.sim.robot import SimRobot
from onboard.config import ControllerConfig
from onboard.logging_mcap import TickLogWriter, read_log
from onboard.loop import build_controller, load_controller_model
from onboard.model import load_model
from onboard.plausibility import POSE_JUMP, TIPPED_OVER
from robot_contract.errors import ModelFileError
from robot_contract.model_file import SANITY_KEY, read_model_file, stamp_model, with_checksum

# -- in-process lockstep fake with a scripted mishap --------------------------------------


class _Mishap:
    """The simulated robot; at simulated time ``at_s`` it is flipped onto its back
    (``flip``) or the tracker's pose jumps 5 m (``teleport``)."""

    def __init__(self, sim: SimRobot, what: str, at_s: float) -> None:
        self._sim, self.what, self.at_s = sim, what, at_s
        self.done_at_ms: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)

    def step(self, duration_s: float) -> None:
        self._sim.step(duration_s)
        if self.done_at_ms is None and self._sim.time_s >= self.at_s - 1e-9:
            self.done_at_ms = round(self._sim.time_s * 1000)
            if self.what == "flip":
                d = self._sim.data
                w, _x, _y, z = d.qpos[3:7]
                # (w, 0, 0, z) * (0, 1, 0, 0): the same heading, rolled half a turn.
                d.qpos[3:7] = (0.0, w, z, 0.0)
                d.qpos[2] += 0.02
                mujoco.mj_forward(self._sim.model, d)

    def pose(self) -> Any:
        p = self._sim.pose()
        if self.what == "teleport" and self.done_at_ms is not None:
            p = type(p)(p.x + 5.0, p.y, p.z, p.roll, p.pitch, p.yaw, p.timestamp_us)
        return p


@contextlib.contextmanager
def _fake(sim: Any, faults: Any = None, seed: int = 0) -> Iterator[str]:
    server = PtyServer(
        FakeFirmware(sim, lockstep=True),
        faults=faults,
        seed=seed,
        out=io.StringIO(),
        log=io.StringIO(),
    )
    path = server.open_pty()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.stop()
        thread.join(timeout=5.0)


def _episode(sim: Any, tmp_path: Path, steps: int) -> tuple[Any, list[dict[str, Any]]]:
    cfg = ControllerConfig()
    model = load_controller_model(SHIPPED_GRBAL, cfg)
    with _fake(sim) as pty:
        robot = SerialRobot(pty)
        log = TickLogWriter(tmp_path / "run.mcap")
        try:
            ctl = build_controller(robot, model, cfg, log=log, lockstep=True)
            ctl.start()
            result = ctl.run(steps)
            status = robot.status()
        finally:
            log.close(ctl.result.as_dict())
            robot.close()
    return (result, status), read_log(tmp_path / "run.mcap").ticks


def test_flipped_robot_is_stopped_within_two_ticks(tmp_path: Path) -> None:
    """The robot is rolled onto its back 3 s into a run: the first or second tick after
    the flip commands a stop (tipped_over), and no later tick drives."""
    mishap = _Mishap(SimRobot("", seed=0), "flip", 3.0)
    (result, status), ticks = _episode(mishap, tmp_path, 45)
    assert mishap.done_at_ms is not None
    after = [
        i for i, t in enumerate(ticks) if t["pose"]["timestamp_us"] >= mishap.done_at_ms * 1000
    ]
    first = after[0]
    assert all(k == "plan" for k in [t["command"]["kind"] for t in ticks[1:first]])
    stops = [i for i in after if TIPPED_OVER in ticks[i]["events"]]
    assert stops and stops[0] - first <= 1, (first, stops[:3])
    print(f"flip at {mishap.done_at_ms} ms: first tick after it {first}, first stop {stops[0]}")
    assert all(t["command"]["kind"] == "stop" for t in ticks[stops[0] :])
    assert result.events[TIPPED_OVER] == len(ticks) - stops[0]
    assert not status.flags & 0x01  # motors off


def test_teleporting_pose_is_refused(tmp_path: Path) -> None:
    """The tracker's pose jumps 5 m at 2 s: pose_jump, a stop, nothing planned from it."""
    mishap = _Mishap(SimRobot("", seed=1), "teleport", 2.0)
    (result, _status), ticks = _episode(mishap, tmp_path, 30)
    assert mishap.done_at_ms is not None
    jumped = [t for t in ticks if t["pose"]["timestamp_us"] >= mishap.done_at_ms * 1000]
    assert jumped and jumped[0]["events"] == [POSE_JUMP]
    assert jumped[0]["command"]["kind"] == "stop" and jumped[0]["state"] is None
    assert result.events[POSE_JUMP] >= 1


# -- model integrity -----------------------------------------------------------------------

_FLIPS = random.Random(12).sample(range(SHIPPED_GRBAL.stat().st_size * 8), 150)


def test_shipped_models_carry_a_verified_checksum() -> None:
    """Both shipped models load with their checksum verified and their probes recorded."""
    for name in ("grbal.onnx", "mb.onnx"):
        f = read_model_file(SHIPPED_GRBAL.parent / name)
        assert f.checksum is not None and len(f.checksum) == 64
        assert SANITY_KEY in f.metadata


def test_every_single_bit_flip_of_the_shipped_model_is_refused(tmp_path: Path) -> None:
    """150 single-bit flips at random positions of models/grbal.onnx: each is refused at
    load with a one-line ModelFileError (checksum, or the file no longer parses)."""
    data = SHIPPED_GRBAL.read_bytes()
    path = tmp_path / "flipped.onnx"
    for bit in _FLIPS:
        b = bytearray(data)
        b[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(b))
        with pytest.raises(ModelFileError) as info:
            load_model(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_roach_run_refuses_a_bit_flipped_model(tmp_path: Path) -> None:
    """`roach run` with a damaged model: exit 2, one line naming the checksum."""
    data = bytearray(SHIPPED_GRBAL.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the weights
    path = tmp_path / "damaged.onnx"
    path.write_bytes(bytes(data))
    res = run_roach("run", "--port", "/dev/null", "--model", str(path), "--lockstep")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "SHA-256" in res.stderr


def test_stale_probe_record_is_refused(tmp_path: Path) -> None:
    """Weights changed after export with the checksum written again but the probes of the
    old weights: the load-time sanity check refuses the file."""
    proto = onnx.load(str(SHIPPED_GRBAL))
    init = next(t for t in proto.graph.initializer if t.name == "layers.2.bias")
    arr = onnx.numpy_helper.to_array(init).copy()
    arr += 0.5
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    path = tmp_path / "stale.onnx"
    path.write_bytes(with_checksum(proto))
    with pytest.raises(ModelFileError, match="recorded probe states"):
        load_model(path)


def test_model_predicting_absurd_changes_never_drives(tmp_path: Path) -> None:
    """A correctly exported and checksummed model whose predictions are absurd (1 km per
    step) is refused at load by `roach run`: exit 2, one line, the robot never moves."""
    path = write_random_model(tmp_path / "absurd.onnx")
    proto = onnx.load(str(path))
    init = next(t for t in proto.graph.initializer if t.name == "norm.delta_mean")
    arr = onnx.numpy_helper.to_array(init).copy()
    arr[0] = 1000.0
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    path.write_bytes(stamp_model(proto))
    assert read_model_file(path).checksum is not None
    with fake_robot("--clock", "lockstep") as (_sim, pty):
        res = run_roach("run", "--port", pty, "--model", str(path), "--lockstep", "--steps", "5")
        robot = SerialRobot(pty)
        try:
            robot.hello()
            status = robot.status()
        finally:
            robot.close()
    assert res.returncode == 2 and "implausible prediction" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not status.flags & 0x01 and "roach run:" not in res.stdout


def test_model_without_checksum_loads_with_a_warning(tmp_path: Path) -> None:
    """A file exported before checksums loads (checksum None); `roach run` says so in one
    warning line and still runs."""
    path = write_random_model(tmp_path / "old.onnx", stamp=False)
    assert load_model(path).checksum is None
    with fake_robot("--clock", "lockstep") as (_sim, pty):
        res = run_roach("run", "--port", pty, "--model", str(path), "--lockstep", "--steps", "3",
                        "--log", str(tmp_path / "r.mcap"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "warning" in res.stderr and "no checksum" in res.stderr


# -- sizes and the period ------------------------------------------------------------------


def test_configuration_too_slow_for_the_period_is_refused_at_start(tmp_path: Path) -> None:
    """100,000 candidates x 5 steps (inside the memory budget) on the realtime fake: the
    warm-up step time does not fit the period; exit 2, one line saying what to reduce, the
    motors never started."""
    cfg = tmp_path / "slow.toml"
    cfg.write_text("[planner]\nn_candidates = 100000\nhorizon = 5\n")
    with fake_robot("--clock", "realtime") as (_sim, pty):
        res = run_roach("run", "--port", pty, "--model", str(SHIPPED_GRBAL), "--config", str(cfg),
                        "--log", str(tmp_path / "r.mcap"))  # fmt: skip
        robot = SerialRobot(pty)
        try:
            robot.hello()
            status = robot.status()
        finally:
            robot.close()
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert "does not fit" in res.stderr and "reduce [planner] n_candidates" in res.stderr
    assert not status.flags & 0x01


# -- link health ---------------------------------------------------------------------------


FAULTS = "corrupt=0.03,drop=0.03,after_frames=20"


def _link_line(stdout: str) -> dict[str, float]:
    m = re.search(
        r"link: corrupt (\d+), dropped (\d+), out of sequence (\d+), oversize (\d+), "
        r"reconnects (\d+), round trip max ([\d.]+) ms",
        stdout,
    )
    assert m, stdout
    keys = ("corrupt", "dropped", "out_of_sequence", "oversize", "reconnects", "max_rtt_ms")
    return {k: float(v) for k, v in zip(keys, m.groups(), strict=True)}


@pytest.mark.parametrize("seed", [0, 2])
def test_link_counters_match_the_injected_faults_exactly(tmp_path: Path, seed: int) -> None:
    """Lockstep with corrupted and dropped frames in both directions: the corrupt and
    dropped counts `roach run` prints are exactly those the fake injected towards the
    host; each tick's log record carries the counters so far. The counters start with
    the episode, so the first 20 frames each way (the hello and start sequence, about
    8 robot-to-host frames) are spared."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[loop]\nlockstep_timeout_s = 0.3\n")
    log_path = tmp_path / "faults.mcap"
    with fake_robot("--clock", "lockstep", "--seed", str(seed), "--faults", FAULTS) as (
        proc,
        pty,
    ):
        res = run_roach("run", "--port", pty, "--model", str(SHIPPED_GRBAL), "--lockstep",
                        "--steps", "120", "--config", str(cfg), "--log", str(log_path))  # fmt: skip
        from firmware_bridge.fake.process import stop_fake

        out, _err = stop_fake(proc)
    assert res.returncode == 0, res.stderr
    stats = json.loads(next(ln for ln in out.splitlines() if ln.startswith("stats "))[6:])
    injected = stats["faults_robot_to_host"]
    seen = _link_line(res.stdout)
    assert injected["corrupted"] > 0 and injected["dropped"] > 0
    assert seen["corrupt"] == injected["corrupted"], (seen, injected)
    assert seen["dropped"] == injected["dropped"], (seen, injected)
    assert seen["out_of_sequence"] == 0 and seen["oversize"] == 0 and seen["reconnects"] == 0
    log = read_log(log_path)
    corrupt = [t["link"]["corrupt"] for t in log.ticks]
    assert corrupt == sorted(corrupt) and corrupt[-1] <= seen["corrupt"]
    assert log.summary is not None and log.summary["link"]["corrupt"] == seen["corrupt"]


class _CountingRobot:
    """The parts of SerialRobot the link's health reads, with every ping and sync seen."""

    connected = True
    last_rtt_s = None

    def __init__(self) -> None:
        self.calls: list[str] = []

    def counters(self) -> dict[str, int]:
        keys = ("bad_crc", "cobs_errors", "runts", "bad_version", "frames_missed", "oversize")
        return dict.fromkeys(keys, 0) | {"reconnects": 0}

    def ping_nowait(self) -> None:
        self.calls.append("ping")

    def sync(self) -> None:
        self.calls.append("sync")


def test_drain_sends_no_ping_after_its_sync() -> None:
    """The end-of-episode drain takes the counts after one answered request; a ping sent
    then would be answered after the counts are taken, its faults never counted."""
    robot = _CountingRobot()
    health = LinkHealth(robot, LinkHealthConfig(ping_every_ticks=1), 0.1)
    health.start()
    health.tick()
    health.drain()
    assert robot.calls == ["ping", "sync"]


def test_reconnect_and_latency_are_reported() -> None:
    """Realtime with 30 ms of added latency each way and one cut of the line: the link's
    health sees the reconnect and a round trip over 60 ms, and turns both into events."""
    with fake_robot("--clock", "realtime", "--faults", "delay_ms=30,disconnect_at=1.5:0.5") as (
        _proc,
        pty,
    ):
        robot = SerialRobot(pty)
        try:
            robot.hello(timeout_s=2.0)
            robot.start_telemetry(100)
            health = LinkHealth(robot, LinkHealthConfig(ping_every_ticks=2), 0.1)
            health.start()
            events: list[str] = []
            t_end = time.monotonic() + 4.0
            while time.monotonic() < t_end:
                _counts, new = health.tick()
                events += [kind for kind, _detail in new]
                time.sleep(0.1)
        finally:
            robot.close()
    summary = health.summary()
    assert summary["reconnects"] == 1 and summary["max_rtt_ms"] >= 60.0, summary
    assert LINK_RECONNECT in events and LINK_LATENCY in events
    assert "reconnects 1" in link_line(summary)


# -- full disk -----------------------------------------------------------------------------


@contextlib.contextmanager
def _small_disk(where: Path, size_kb: int) -> Iterator[Path]:
    where.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


def test_full_disk_ends_cleanly_with_a_readable_log(tmp_path: Path) -> None:
    """The log's disk fills mid-run: the motors stop, `roach run` exits 2 with one line,
    and the log reads back finished, with every tick up to the last whole one and the
    summary."""
    with (
        _small_disk(tmp_path / "disk", 256) as disk,
        fake_robot("--clock", "lockstep") as (
            _sim,
            pty,
        ),
    ):
        log_path = disk / "run.mcap"
        res = run_roach("run", "--port", pty, "--model", str(SHIPPED_GRBAL), "--lockstep",
                        "--steps", "5000", "--log", str(log_path))  # fmt: skip
        robot = SerialRobot(pty)
        try:
            robot.hello()
            status = robot.status()
        finally:
            robot.close()
        log = read_log(log_path)
        reserve_left = (disk / "run.mcap.reserve").exists()
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the log" in lines[0] and "Traceback" not in res.stderr
    assert "No space left on device" in lines[0]
    assert log.finished and log.summary is not None and "log_error" in log.summary
    ticks = [t["tick"] for t in log.ticks]
    assert len(ticks) > 20 and ticks == list(range(len(ticks)))
    assert not reserve_left
    assert not status.flags & 0x01  # motors off
    assert math.isfinite(log.summary["ticks"])
    assert np.isfinite(np.asarray([t["state"] for t in log.ticks if t["state"]], float)).all()


def test_samples_queued_during_a_stall_are_not_planned_from(tmp_path: Path) -> None:
    """`roach run` (realtime) is stopped with SIGSTOP for 2 s: the samples queued meanwhile
    arrive at once when it resumes; judged by their own timestamps they are old, so no tick
    plans from a sample older than telemetry_stale_s by the board's clock."""
    log_path = tmp_path / "stall.mcap"
    with fake_robot("--clock", "realtime") as (_sim, pty):
        proc = subprocess.Popen(
            roach_cmd("run", "--port", pty, "--model", str(SHIPPED_GRBAL), "--steps", "70",
                      "--log", str(log_path)),
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            if log_path.exists() and len(read_log(log_path).ticks) >= 20:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGSTOP)
        time.sleep(2.0)
        proc.send_signal(signal.SIGCONT)
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    ticks = read_log(log_path).ticks
    # The board clock against this computer's, from the ticks before the stall.
    lag = [t["t_monotonic_s"] - t["telemetry"]["timestamp_us"] * 1e-6 for t in ticks[:15]]
    offset = min(lag)
    ages = [
        t["t_monotonic_s"] - t["telemetry"]["timestamp_us"] * 1e-6 - offset
        for t in ticks
        if t["command"]["kind"] == "plan"
    ]
    assert max(ages) < 0.25 + 0.02, max(ages)  # + the allowed clock drift, 1 ms per s
    # The stall itself stopped the robot: the board's watchdog tripped (robot_stopped)
    # and/or the queued samples were refused as old.
    events = {e for t in ticks for e in t["events"]}
    assert events & {"old_telemetry", "stale_telemetry", "robot_stopped"}, events
