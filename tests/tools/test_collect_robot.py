"""`roach collect --port` against the fake on a real pty: the arena boundary steers the
robot back, a tipped robot and a flat battery end the session, Ctrl-C keeps everything
and a rerun appends; the logs are run logs whose transitions never span a stop."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path

from cli_helpers import ENV, REPO, fake_robot, roach_cmd, run_roach

from onboard.logging_mcap import read_log
from onboard.replay_outputs import chains


def _collect(pty: str, out: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return run_roach("collect", "--port", pty, "--out", str(out), "--lockstep", *more)


def test_boundary_steers_back_and_tip_over_ends_the_session(tmp_path: Path) -> None:
    """Random driving in a 0.5 m arena: the robot is steered back (arena_steer) and never
    driven beyond the radius; rolled over at 4 s, the next tick stops it (tip_over) and
    no tick drives after; every chain of transitions lies between stops."""
    with fake_robot("--clock", "lockstep", "--seed", "1", "--tip-at", "4") as (_s, pty):
        res = _collect(pty, tmp_path, "--minutes", "1", "--arena-radius-m", "0.5",
                       "--arena-margin-m", "0.2")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "stopped by tip_over" in res.stdout
    [log_path] = tmp_path.glob("collect-carpet-*.mcap")
    log = read_log(log_path)
    ticks = log.ticks
    kinds = [t["command"]["kind"] for t in ticks]
    stops = [i for i, k in enumerate(kinds) if k == "stop"]
    assert stops and stops[0] == len(ticks) - 1  # the tip-over tick is the last
    assert 38 <= stops[0] <= 42, stops  # tipped at 4 s, stopped within two ticks
    events = [e["kind"] for e in log.events]
    assert "arena_steer" in events and events[-1] == "tip_over"
    x0, y0 = ticks[0]["pose"]["x"], ticks[0]["pose"]["y"]
    driven = [t for t in ticks if t["command"]["kind"] == "plan"]
    far = max(math.hypot(t["pose"]["x"] - x0, t["pose"]["y"] - y0) for t in driven)
    assert far <= 0.5, far
    # One unbroken chain: each command sent, followed by the state it led to (the last
    # one the tipped state of the stopping tick); nothing after the stop.
    [(states, actions)] = chains(ticks)
    assert len(actions) == len(driven) and len(states) == len(driven) + 1
    index = json.loads((tmp_path / "collect-index.json").read_text())["sessions"]
    assert index[0]["stopped_by"] == "tip_over" and index[0]["driven_ticks"] == len(driven)


def test_battery_floor_stops_before_driving(tmp_path: Path) -> None:
    """A battery below the floor: the first tick stops, the session ends, nothing driven."""
    with fake_robot("--clock", "lockstep", "--condition", "battery_v=3.1") as (_s, pty):
        res = _collect(pty, tmp_path, "--minutes", "1", "--battery-floor-v", "3.3")
    assert res.returncode == 0, res.stderr
    assert "stopped by battery_floor" in res.stdout and "0 transitions" in res.stdout


def test_ctrl_c_keeps_the_session_and_a_rerun_appends(tmp_path: Path) -> None:
    """SIGINT mid-session: exit 0, the log is whole and indexed; the rerun's minutes start
    from what the first session drove and it writes a second log."""
    with fake_robot("--clock", "lockstep") as (_s, pty):
        proc = subprocess.Popen(
            roach_cmd("collect", "--port", pty, "--out", str(tmp_path), "--lockstep",
                      "--minutes", "10", "--arena-radius-m", "1.0"),
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("*.mcap")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped by SIGINT" in out
        first = json.loads((tmp_path / "collect-index.json").read_text())["sessions"]
        driven = first[0]["driven_ticks"]
        assert driven > 10 and read_log(tmp_path / first[0]["log"]).finished
        target = (driven + 30) * 0.1 / 60
        res = _collect(pty, tmp_path, "--minutes", f"{target:.6f}", "--arena-radius-m", "1.0")
    assert res.returncode == 0, res.stderr
    sessions = json.loads((tmp_path / "collect-index.json").read_text())["sessions"]
    assert len(sessions) == 2 and len(list(tmp_path.glob("*.mcap"))) == 2
    assert 29 <= sessions[1]["driven_ticks"] <= 31


def test_bad_collect_options_are_one_line(tmp_path: Path) -> None:
    """An arena margin wider than its radius: exit 2, one line, no log written."""
    res = run_roach("collect", "--port", "/dev/null", "--out", str(tmp_path),
                    "--arena-radius-m", "0.3", "--arena-margin-m", "0.5")  # fmt: skip
    assert res.returncode == 2 and "need 0 < margin < radius" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not list(tmp_path.glob("*.mcap"))
