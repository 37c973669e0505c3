"""`roach run` takes its clock from the board's hello; a clock asked for that the board
does not run is one line and exit code 2, both ways, before anything is logged."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from cli_helpers import fake_robot, run_roach
from mcap.reader import make_reader

from onboard.board_clock import ClockMismatchError, board_clock, pick_clock
from onboard.logging_mcap import read_log


def test_lockstep_board_runs_lockstep_without_a_flag(
    random_model_file: Path, tmp_path: Path
) -> None:
    """Against `roach sim --clock lockstep`, no flag: a lockstep run, every tick planned on a
    sample 0.1 s of simulated time after the previous one. The log also holds the pose of
    every tick and the path once in Foxglove's well-known schemas."""
    log_path = tmp_path / "run.mcap"
    with fake_robot("--clock", "lockstep", "--seed", "0") as (_sim, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--steps", "12",
            "--log", str(log_path),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "lockstep clock" in res.stdout
    log = read_log(log_path)
    assert log.run is not None and log.run["lockstep"] is True
    stamps = [t["telemetry"]["timestamp_us"] for t in log.ticks]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [100_000] * 11
    assert all(t["command"]["kind"] == "plan" for t in log.ticks)
    with open(log_path, "rb") as f:
        msgs = [(sch.name, ch.topic, json.loads(m.data)) for sch, ch, m in
                make_reader(f).iter_messages(topics=["/roach/pose", "/roach/path"])]  # fmt: skip
    poses = [m for name, topic, m in msgs if topic == "/roach/pose"]
    paths = [m for name, topic, m in msgs if topic == "/roach/path"]
    assert {name for name, topic, _ in msgs if topic == "/roach/pose"} == {"foxglove.PoseInFrame"}
    assert len(poses) == 12 and len(paths) == 1 and len(paths[0]["poses"]) >= 2
    first = log.ticks[0]["pose"]
    assert poses[0]["pose"]["position"] == {"x": first["x"], "y": first["y"], "z": first["z"]}
    assert abs(sum(v * v for v in poses[0]["pose"]["orientation"].values()) - 1) < 1e-9


@pytest.mark.parametrize(
    ("board", "flags"),
    [("lockstep", ["--clock", "realtime"]), ("realtime", ["--lockstep"])],
)  # fmt: skip
def test_clock_mismatch_is_one_line_exit_2(
    board: str, flags: list[str], random_model_file: Path, tmp_path: Path
) -> None:
    """A realtime run against a lockstep board, or the reverse: exit 2, one stderr line
    naming both clocks and what to change; no log is started."""
    log_path = tmp_path / "run.mcap"
    with fake_robot("--clock", board, "--seed", "0") as (_sim, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--steps", "5",
            "--log", str(log_path), *flags, timeout=60,
        )  # fmt: skip
    lines = res.stderr.strip().splitlines()
    print(lines)
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("roach run: error: the board on "), lines
    asked = "realtime" if board == "lockstep" else "lockstep"
    assert f"runs a {board} clock" in lines[0] and f"a {asked} run was asked for" in lines[0]
    assert "drop --clock/--lockstep" in lines[0]
    assert not log_path.exists()


def test_pick_clock_rules() -> None:
    """auto follows the hello; a real board (any other name) is realtime; a bad name is a
    ConfigError listing the valid clocks."""
    lock, real = {"name": "sim-lockstep"}, {"name": "roach-mb-v2"}
    assert board_clock(lock) == "lockstep" and board_clock(real) == "realtime"
    assert board_clock({"name": "sim-c-lockstep"}) == "lockstep"
    assert board_clock({"name": "sim-c-realtime"}) == "realtime"
    assert pick_clock(lock, "auto") is True and pick_clock(real, "auto") is False
    assert pick_clock(lock, "lockstep") is True and pick_clock(real, "realtime") is False
    with pytest.raises(ClockMismatchError):
        pick_clock(real, "lockstep")
    with pytest.raises(Exception, match="valid: auto, realtime, lockstep"):
        pick_clock(real, "wall")
