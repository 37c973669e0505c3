"""`roach sim --pose-out udp:...` + `roach run --pose udp:...`: the tracker's network path
end to end, over the real pty and a real UDP socket, with no serial POSE frames."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess

from cli_helpers import ENV, REPO, fake_robot, roach_cmd, run_roach

from firmware_bridge.fake.process import stop_fake
from onboard.logging_mcap import read_log


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_follows_a_path_on_the_udp_pose_of_the_fake(random_model_file, tmp_path) -> None:
    """A short straight task completes on the UDP pose alone: every tick plans, the pose
    timestamps are the fake's simulated clock (tracker time), pose age and latency are
    logged per tick, and the fake sent one datagram per sample and no POSE frame."""
    port = _free_udp_port()
    log_path = tmp_path / "run.mcap"
    with fake_robot("--clock", "lockstep", "--pose-out", f"udp:127.0.0.1:{port}") as (sim, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--task", "straight",
            "--steps", "20", "--lockstep", "--pose", f"udp:127.0.0.1:{port}",
            "--log", str(log_path), "--quiet",
        )  # fmt: skip
        out, _err = stop_fake(sim)
    assert res.returncode == 0, res.stderr
    stats = json.loads(out.strip().splitlines()[-1].removeprefix("stats "))
    assert stats["pose_out"]["sent"] >= 20 and stats["pose_out"]["send_errors"] == 0
    log = read_log(log_path)
    assert len(log.ticks) == 20 and all(t["command"]["kind"] == "plan" for t in log.ticks)
    stamps = [t["pose"]["timestamp_us"] for t in log.ticks]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [100_000] * 19
    assert all(t["timing"]["pose_age_ms"] >= 0 for t in log.ticks)
    assert all(t["timing"]["pose_latency_ms"] is not None for t in log.ticks)
    first = log.ticks[0]["pose"]
    assert abs(first["x"]) < 0.05 and abs(first["yaw"]) < 0.05  # aligned at start
    assert log.summary is not None and log.summary["tracking"]["progress_m"] > 0.3
    assert log.run is not None and log.run["config"]["pose"]["source"] == f"udp:127.0.0.1:{port}"


def test_serial_pose_is_gone_when_the_fake_publishes_over_udp(random_model_file, tmp_path) -> None:
    """With --pose-out the board sends no POSE frame: a run on the serial pose has none,
    every tick stops with no_pose."""
    port = _free_udp_port()
    with fake_robot("--clock", "lockstep", "--pose-out", f"udp:127.0.0.1:{port}") as (_s, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--steps", "5",
            "--lockstep", "--log", str(tmp_path / "r.mcap"), "--quiet",
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "events: no_pose 5" in res.stdout


def test_realtime_start_without_udp_poses_is_one_line(random_model_file, tmp_path) -> None:
    """No datagram on the port within 1 s: exit 2, one line naming the source and what it
    received."""
    port = _free_udp_port()
    with fake_robot("--clock", "realtime") as (_s, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--steps", "5",
            "--pose", f"udp:127.0.0.1:{port}", "--log", str(tmp_path / "r.mcap"), "--quiet",
        )  # fmt: skip
    assert res.returncode == 2
    line = res.stderr.strip()
    assert "\n" not in line and "no pose within 1 s" in line
    assert f"udp:127.0.0.1:{port}: 0 poses received" in line


def test_bad_pose_options_are_one_line_errors(random_model_file) -> None:
    """Bad --pose / --pose-out strings: exit 2, one line, before any robot is touched."""
    res = run_roach("run", "--port", "/dev/null", "--model", str(random_model_file),
                    "--pose", "udp:host:notaport")  # fmt: skip
    assert res.returncode == 2 and "port 'notaport'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = run_roach("sim", "--pose-out", "tcp:1.2.3.4:5")
    assert res.returncode == 2 and "write udp:HOST:PORT" in res.stderr


def test_a_tracker_that_falls_silent_stops_the_robot(random_model_file, tmp_path) -> None:
    """Realtime, the fake's datagrams pass through a relay that stops forwarding after
    1.5 s: the ticks after that see the pose age past pose_stale_s and stop (stale_pose),
    as with the serial pose; none of them drives."""
    import threading
    import time

    fake_port, run_port = _free_udp_port(), _free_udp_port()
    stop_at = [float("inf")]
    done = threading.Event()

    def relay() -> None:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        ):
            rx.bind(("127.0.0.1", fake_port))
            rx.settimeout(0.05)
            while not done.is_set():
                try:
                    data = rx.recv(2048)
                except TimeoutError:
                    continue
                if time.monotonic() < stop_at[0]:
                    tx.sendto(data, ("127.0.0.1", run_port))

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    log_path = tmp_path / "run.mcap"
    try:
        with fake_robot("--clock", "realtime", "--pose-out", f"udp:127.0.0.1:{fake_port}") as (
            _s,
            pty,
        ):
            proc = subprocess.Popen(
                roach_cmd("run", "--port", pty, "--model", str(random_model_file),
                          "--steps", "40", "--pose", f"udp:127.0.0.1:{run_port}",
                          "--log", str(log_path), "--quiet"),
                cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            while not log_path.exists() or not read_log(log_path).ticks:
                time.sleep(0.05)
            stop_at[0] = time.monotonic() + 1.5
            out, err = proc.communicate(timeout=60)
    finally:
        done.set()
        thread.join(timeout=2)
    assert proc.returncode == 0, err
    ticks = read_log(log_path).ticks
    ages = [t["timing"]["pose_age_ms"] for t in ticks]
    stale = [i for i, t in enumerate(ticks) if "stale_pose" in t["events"]]
    assert stale and "stale_pose" in out
    assert all(ticks[i]["command"]["kind"] == "stop" for i in range(stale[0], len(ticks)))
    assert ages[stale[0]] > 250 and max(ages[: max(stale[0] - 3, 1)]) < 250
