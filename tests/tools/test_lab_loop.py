"""The lab's loop end to end with no hardware (docs/lab.md), on a tiny budget: the fake
publishes its pose over UDP and sends no POSE frames; `roach collect --port --pose udp`
collects on it, `roach train` learns from those logs alone, and `roach run --pose udp`
with the exported model completes a straight task (about 15 s: 2 simulated minutes of
collection in lockstep, 5 epochs of a 32x32 model)."""

from __future__ import annotations

import socket
from pathlib import Path

from cli_helpers import fake_robot, run_roach

from onboard.logging_mcap import read_log


def test_collect_train_run_on_the_udp_pose(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        udp = f"udp:127.0.0.1:{s.getsockname()[1]}"
    data = tmp_path / "data"
    for label in ("carpet", "turf"):
        with fake_robot("--clock", "lockstep", "--condition", f"terrain={label}",
                        "--pose-out", udp) as (_s, pty):  # fmt: skip
            res = run_roach(
                "collect", "--port", pty, "--pose", udp, "--out", str(data),
                "--label", label, "--minutes", "1", "--lockstep", "--no-progress",
            )  # fmt: skip
        assert res.returncode == 0, res.stderr
    res = run_roach("train", "--algo", "grbal", "--data", str(data), "--out", str(tmp_path / "t"),
                    "--hidden", "32,32", "--epochs", "5", "--no-progress", timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr
    model = tmp_path / "m.onnx"
    res = run_roach("export", str(tmp_path / "t"), "--out", str(model), timeout=300)
    assert res.returncode == 0, res.stderr
    log_path = tmp_path / "run.mcap"
    with fake_robot("--clock", "lockstep", "--pose-out", udp) as (_s, pty):
        res = run_roach("run", "--port", pty, "--pose", udp, "--model", str(model),
                        "--task", "straight", "--steps", "40", "--lockstep",
                        "--log", str(log_path), "--quiet")  # fmt: skip
    assert res.returncode == 0, res.stderr
    log = read_log(log_path)
    assert len(log.ticks) == 40 and log.summary is not None
    assert log.summary["tracking"]["progress_m"] > 0.5, log.summary["tracking"]
