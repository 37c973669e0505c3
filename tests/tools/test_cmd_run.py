"""`roach run` end to end against `roach sim` on a real pty: episodes, logs, kill -9,
signals, injected link faults and one-line user errors."""

from __future__ import annotations

import itertools
import json
import re
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import ENV, REPO, fake_robot, roach_cmd, run_roach, write_random_model
from mcap.exceptions import EndOfFile
from mcap.reader import NonSeekingReader, make_reader

from firmware_bridge.serial_robot import SerialRobot
from onboard.logging_mcap import TOPIC_TICK, read_log

MOTORS_ON = 0x01
WATCHDOG_TRIPPED = 0x02


def test_lockstep_straight_110_steps(controller_model: Path, tmp_path: Path) -> None:
    """A 110-step `straight` episode on the lockstep fake completes; the log opens with the
    mcap reader and holds 110 ticks; the step-time percentiles are printed."""
    log_path = tmp_path / "run.mcap"
    # The random model's kept steps (the default mode) drift into predictions the
    # plausibility bound stops; the published per-tick reset keeps it planning.
    mode = "grbal" if controller_model.name == "random.onnx" else "dyn-eval"
    with fake_robot("--clock", "lockstep", "--seed", "0") as (_sim, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(controller_model), "--task", "straight",
            "--steps", "110", "--lockstep", "--log", str(log_path), "--mode", mode,
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    print(res.stdout)
    assert re.search(
        r"step time \(adapt \+ plan\).*p50 [\d.]+ ms\s+p99 [\d.]+ ms\s+max", res.stdout
    )
    assert "overruns: " in res.stdout and "tracking (110 states)" in res.stdout
    with open(log_path, "rb") as f:
        ticks = [
            json.loads(m.data)
            for _s, c, m in make_reader(f).iter_messages()
            if c.topic == TOPIC_TICK
        ]
    assert [t["tick"] for t in ticks] == list(range(110))
    # A clean lockstep run has fresh data every tick: every tick planned a command.
    assert all(t["command"]["kind"] == "plan" for t in ticks)
    # Tick k reads the sample at the end of the (k+1)-th simulated period.
    stamps = [t["telemetry"]["timestamp_us"] for t in ticks]
    assert all(b - a == 100_000 for a, b in itertools.pairwise(stamps))
    log = read_log(log_path)
    assert log.finished and log.summary is not None and log.summary["ticks"] == 110
    if controller_model.name == "grbal.onnx":
        # The shipped model must also drive well: on the path, and along it.
        tracking = log.summary["tracking"]
        assert tracking["mean_distance_m"] < 0.05, tracking
        assert tracking["progress_fraction"] > 0.9, tracking


def test_lockstep_runs_repeat_exactly(random_model_file: Path, tmp_path: Path) -> None:
    """Two lockstep runs with the same seeds log the same states and commands, bit for bit."""
    runs = []
    for i in range(2):
        log_path = tmp_path / f"rep{i}.mcap"
        with fake_robot("--clock", "lockstep", "--seed", "7") as (_sim, pty):
            res = run_roach(
                "run", "--port", pty, "--model", str(random_model_file), "--steps", "25",
                "--task", "left", "--lockstep", "--log", str(log_path),
            )  # fmt: skip
        assert res.returncode == 0, res.stderr
        runs.append([(t["state"], t["command"]) for t in read_log(log_path).ticks])
    assert len(runs[0]) == 25 and runs[0] == runs[1]


def test_kill_9_keeps_older_ticks_and_watchdog_stops_robot(
    random_model_file: Path, tmp_path: Path
) -> None:
    """kill -9 of a realtime run: the log still opens and holds every tick older than 1 s,
    and the fake's watchdog turns the motors off."""
    log_path = tmp_path / "killed.mcap"
    with fake_robot("--clock", "realtime") as (_sim, pty):
        proc = subprocess.Popen(
            roach_cmd("run", "--port", pty, "--model", str(random_model_file),
                      "--steps", "200", "--log", str(log_path)),
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for_ticks(log_path, 15, proc)
            time.sleep(0.35)  # kill at an arbitrary moment within a tick
        finally:
            proc.send_signal(signal.SIGKILL)
            killed_ns = time.time_ns()
            proc.communicate(timeout=10)
        robot = SerialRobot(pty)
        try:
            status = _wait_watchdog(robot)
        finally:
            robot.close()
    assert status.watchdog_trips >= 1 and not status.flags & MOTORS_ON
    assert status.flags & WATCHDOG_TRIPPED

    log = read_log(log_path)
    assert not log.finished
    assert [t["tick"] for t in log.ticks] == list(range(len(log.ticks)))
    # Ticks are 0.1 s apart: every tick older than 1 s is there iff the newest one is
    # at most 1 s + one period older than the kill.
    age_s = (killed_ns - log.log_times_ns[-1]) * 1e-9
    print(f"{len(log.ticks)} ticks in the log, newest {age_s * 1e3:.0f} ms before the kill")
    assert age_s <= 1.1
    n = 0
    with open(log_path, "rb") as f:
        try:
            for _s, c, _m in NonSeekingReader(f).iter_messages(log_time_order=False):
                n += c.topic == TOPIC_TICK
        except (EndOfFile, struct.error):
            pass  # the unfinished tail
    assert n == len(log.ticks)


def test_sigterm_stops_motors_and_finishes_log(random_model_file: Path, tmp_path: Path) -> None:
    """SIGTERM mid-episode: motors stopped by command (no watchdog trip), the log finished
    with its summary, exit code 128 + SIGTERM."""
    log_path = tmp_path / "term.mcap"
    with fake_robot("--clock", "realtime") as (_sim, pty):
        proc = subprocess.Popen(
            roach_cmd("run", "--port", pty, "--model", str(random_model_file),
                      "--steps", "200", "--log", str(log_path)),
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for_ticks(log_path, 5, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            t_sig = time.monotonic()
            out, err = proc.communicate(timeout=20)
            print(f"exited {1e3 * (time.monotonic() - t_sig):.0f} ms after SIGTERM")
        robot = SerialRobot(pty)
        try:
            time.sleep(0.5)  # longer than the command timeout: a running drive would trip
            status = robot.status()
        finally:
            robot.close()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in out
    assert not status.flags & MOTORS_ON and status.watchdog_trips == 0
    log = read_log(log_path)
    assert log.finished and log.summary is not None
    assert log.summary["stopped_by"] == "SIGTERM" and log.summary["ticks"] == len(log.ticks)


def test_sigterm_with_the_robot_gone_exits_within_a_period(
    random_model_file: Path, tmp_path: Path
) -> None:
    """The fake killed mid-episode, then SIGTERM: the shutdown does not wait for answers
    from the dead link; exit code 128 + SIGTERM and the log finished. Prints the time
    from SIGTERM to exit."""
    log_path = tmp_path / "dead.mcap"
    with fake_robot("--clock", "realtime") as (sim, pty):
        proc = subprocess.Popen(
            roach_cmd("run", "--port", pty, "--model", str(random_model_file),
                      "--steps", "200", "--log", str(log_path)),
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for_ticks(log_path, 5, proc)
            sim.kill()
            sim.wait(timeout=10)
            time.sleep(0.5)  # the run keeps ticking on a dead link (stop commands)
        finally:
            proc.send_signal(signal.SIGTERM)
            t_sig = time.monotonic()
            _out, err = proc.communicate(timeout=20)
            print(f"dead link: exited {1e3 * (time.monotonic() - t_sig):.0f} ms after SIGTERM")
    assert proc.returncode == 128 + signal.SIGTERM, err
    log = read_log(log_path)
    assert log.finished and log.summary is not None
    assert log.summary["stopped_by"] == "SIGTERM"
    assert log.ticks[-1]["command"]["kind"] == "stop"


def test_sigstop_past_the_command_timeout_then_the_motors_restart(
    random_model_file: Path, tmp_path: Path
) -> None:
    """`roach run` paused with SIGSTOP for longer than the command timeout: the board's
    watchdog stops the motors; after SIGCONT the run counts a stop event (robot_stopped,
    or stale data if the samples are late), restarts the motors and drives again."""
    log_path = tmp_path / "paused.mcap"
    with fake_robot("--clock", "realtime") as (_sim, pty):
        proc = subprocess.Popen(
            roach_cmd("run", "--port", pty, "--model", str(random_model_file),
                      "--steps", "30", "--mode", "none", "--log", str(log_path)),
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for_ticks(log_path, 8, proc)
            proc.send_signal(signal.SIGSTOP)
            time.sleep(0.6)  # command timeout 300 ms
            proc.send_signal(signal.SIGCONT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        robot = SerialRobot(pty)
        try:
            status = robot.status()
        finally:
            robot.close()
    assert proc.returncode == 0, err
    print(out)
    assert status.watchdog_trips >= 1
    ticks = read_log(log_path).ticks
    stops = {"robot_stopped", "stale_telemetry", "stale_pose"}
    i_stop = next(i for i, t in enumerate(ticks) if stops & set(t["events"]))
    assert ticks[i_stop]["command"]["kind"] == "stop"
    assert ticks[i_stop - 1]["telemetry"]["status_flags"] & MOTORS_ON
    # Driving again: later ticks plan, and the board reports its motors on.
    later = ticks[i_stop + 3 :]
    assert later and all(t["command"]["kind"] == "plan" for t in later)
    assert all(t["telemetry"]["status_flags"] & MOTORS_ON for t in later)


def test_dropped_frames_give_stop_commands_and_counted_events(
    random_model_file: Path, tmp_path: Path
) -> None:
    """With frames dropped on the link, ticks without fresh data command a stop and count
    an event, the history restarts after a stop, and the episode runs to the end."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[loop]\nlockstep_timeout_s = 0.2\n")
    log_path = tmp_path / "faults.mcap"
    with fake_robot("--clock", "lockstep", "--faults", "drop=0.08", "--seed", "3") as (_s, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--config", str(cfg),
            "--steps", "60", "--lockstep", "--log", str(log_path),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    log = read_log(log_path)
    assert [t["tick"] for t in log.ticks] == list(range(60))
    stale = [t for t in log.ticks if {"stale_telemetry", "stale_pose"} & set(t["events"])]
    assert stale, "no tick saw stale data: the fault injection did not bite"
    assert all(t["command"]["kind"] == "stop" for t in stale)
    assert sum(t["command"]["kind"] == "plan" for t in log.ticks) > 30
    # No transition spans a stop: the first planned tick after one adapts on nothing.
    for prev, t in itertools.pairwise(log.ticks):
        if prev["command"]["kind"] == "stop" and t["command"]["kind"] == "plan":
            assert t["adaptation"]["loss_before"] is None
    assert log.summary is not None
    for kind in ("stale_telemetry", "stale_pose"):
        n = sum(kind in t["events"] for t in log.ticks)
        assert log.summary["events"].get(kind, 0) == n


@pytest.mark.parametrize(
    "case", ["garbage model", "truncated model", "mismatched model", "missing port",
             "bad config value", "unknown config key", "bad --mode"],
)  # fmt: skip
def test_user_errors_are_one_line_exit_2(
    case: str, random_model_file: Path, tmp_path: Path
) -> None:
    """Bad model file, mismatched model, missing port, bad config: exit 2, one stderr line."""
    model, port, extra = str(random_model_file), "/dev/does-not-exist", []
    if case == "garbage model":
        (tmp_path / "g.onnx").write_bytes(b"\x00garbage" * 100)
        model = str(tmp_path / "g.onnx")
    elif case == "truncated model":
        data = random_model_file.read_bytes()
        (tmp_path / "t.onnx").write_bytes(data[: len(data) // 2])
        model = str(tmp_path / "t.onnx")
    elif case == "mismatched model":
        model = str(
            write_random_model(tmp_path / "m.onnx", metadata={"roach.action_high": "8.0,8.0"})
        )
    elif case == "bad config value":
        (tmp_path / "c.toml").write_text("[loop]\nrate_hz = 500.0\n")
        extra = ["--config", str(tmp_path / "c.toml")]
    elif case == "unknown config key":
        (tmp_path / "c.toml").write_text("[planner]\nn_candidate = 10\n")
        extra = ["--config", str(tmp_path / "c.toml")]
    elif case == "bad --mode":
        extra = ["--mode", "maml"]
    res = run_roach("run", "--port", port, "--model", model, *extra, timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("roach run: error: "), res.stderr
    print(lines[0])
    expect = {
        "garbage model": "not a readable ONNX",
        "truncated model": "model file",
        "mismatched model": "action bounds",
        "missing port": "does not exist",
        "bad config value": "rate_hz",
        "unknown config key": "n_candidate",
        "bad --mode": "grbal, dyn-eval, none",
    }[case]
    assert expect in lines[0]


def _wait_for_ticks(path: Path, n: int, proc: subprocess.Popen[str], timeout_s: float = 60) -> None:
    """Polls the growing log until it holds n ticks (the run must still be going)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, f"roach run ended early: {proc.communicate()}"
        if path.exists() and path.stat().st_size > 8 and len(read_log(path).ticks) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} ticks logged after {timeout_s} s")


def _wait_watchdog(robot: SerialRobot, timeout_s: float = 3.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    status = robot.status()
    while status.watchdog_trips == 0 and time.monotonic() < end:
        time.sleep(0.05)
        status = robot.status()
    return status
