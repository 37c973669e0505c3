"""`roach run --live`: a real WebSocket client speaking the Foxglove protocol subscribes
to the pose while a lockstep run goes on and receives pose messages; the run's tick
times with and without the live view are printed (not asserted: a benchmark's job)."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import struct
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import ENV, REPO, fake_robot, roach_cmd, run_roach

from onboard.logging_mcap import read_log

websockets = pytest.importorskip("websockets")
pytest.importorskip("foxglove")

STEPS = "200"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _subscribe_pose(port: int, proc: subprocess.Popen[str]) -> tuple[dict, list[bytes]]:
    """Connects (retrying while the run starts), subscribes to /roach/pose, collects the
    message payloads until the server goes away with the run."""
    deadline = time.monotonic() + 60
    while True:
        try:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}",
                subprotocols=["foxglove.sdk.v1", "foxglove.websocket.v1"],
                open_timeout=2,
            )
            break
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the live server never came up"
            await asyncio.sleep(0.05)
    channel: dict = {}
    payloads: list[bytes] = []
    try:
        async for frame in ws:
            if isinstance(frame, str):
                msg = json.loads(frame)
                if msg.get("op") == "advertise" and not channel:
                    for ch in msg["channels"]:
                        if ch["topic"] == "/roach/pose":
                            channel = ch
                            sub = {"id": 1, "channelId": ch["id"]}
                            await ws.send(json.dumps({"op": "subscribe", "subscriptions": [sub]}))
            elif frame[0] == 0x01 and struct.unpack_from("<I", frame, 1)[0] == 1:
                payloads.append(bytes(frame[13:]))  # opcode, subscription id, timestamp
    except websockets.ConnectionClosed:
        pass
    return channel, payloads


def test_live_client_receives_poses_during_a_lockstep_run(
    random_model_file: Path, tmp_path: Path
) -> None:
    """The client is advertised /roach/pose as foxglove.PoseInFrame, subscribes, and gets
    pose messages while the run ticks; the run still completes every tick."""
    port = _free_port()
    with fake_robot("--clock", "lockstep", "--seed", "0") as (_sim, pty):
        proc = subprocess.Popen(
            roach_cmd("run", "--port", pty, "--model", str(random_model_file), "--task",
                      "figure8", "--steps", STEPS, "--live", str(port),
                      "--log", str(tmp_path / "run.mcap")),
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        channel, payloads = asyncio.run(_subscribe_pose(port, proc))
        out, err = proc.communicate(timeout=120)
    print(f"{len(payloads)} pose messages over {STEPS} ticks; {channel.get('schemaName')}")
    assert proc.returncode == 0, err
    assert f"roach run: {STEPS} ticks" in out
    assert channel["schemaName"] == "foxglove.PoseInFrame"
    assert len(payloads) >= 5 and all(payloads)  # at most 20 a second, the run takes seconds


def _tick_ms(res: subprocess.CompletedProcess[str], log: Path) -> list[float]:
    assert res.returncode == 0, res.stdout + res.stderr
    return [t["timing"]["tick_ms"] for t in read_log(log).ticks]


def test_tick_time_with_and_without_the_live_view(
    random_model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prints the median whole-tick time (from the logs) of the same lockstep run without
    and with --live, run in the order without, with, with, without so that drift of the
    shared machine falls on both alike (printed into the test command's output)."""
    times: dict[str, list[float]] = {"without": [], "with": []}
    for i, name in enumerate(("without", "with", "with", "without")):
        extra = ["--live", str(_free_port())] if name == "with" else []
        log = tmp_path / f"{i}-{name}.mcap"
        with fake_robot("--clock", "lockstep", "--seed", "0") as (_sim, pty):
            res = run_roach(
                "run", "--port", pty, "--model", str(random_model_file), "--steps", "60",
                "--log", str(log), "--quiet", *extra,
            )  # fmt: skip
        times[name] += _tick_ms(res, log)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    with capsys.disabled():
        print(
            f"\nwhole tick p50 over {len(times['with'])} ticks: without --live "
            f"{p50['without']:.2f} ms, with --live {p50['with']:.2f} ms "
            f"(ratio {p50['with'] / p50['without']:.2f})"
        )
