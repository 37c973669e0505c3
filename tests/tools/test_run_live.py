"""`roach run --live`: a real WebSocket client speaking the Foxglove protocol subscribes
to the pose while a lockstep run goes on and receives pose messages; the run's tick
times with and without the live view are printed (not asserted: a benchmark's job)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import ENV, REPO, fake_robot, roach_cmd, run_roach

websockets = pytest.importorskip("websockets")
pytest.importorskip("foxglove")

STEPS = "120"


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
    assert len(payloads) >= 10 and all(payloads)


def _tick_p50(res: subprocess.CompletedProcess[str]) -> float:
    m = re.search(r"whole tick: p50 ([\d.]+) ms", res.stdout)
    assert res.returncode == 0 and m, res.stdout + res.stderr
    return float(m.group(1))


def test_tick_time_with_and_without_the_live_view(random_model_file: Path, tmp_path: Path) -> None:
    """Prints the median tick time of the same lockstep run with and without --live."""
    times: dict[str, float] = {}
    rounds = [("without", []), ("with", ["--live", str(_free_port())])]
    steps = "60"
    for name, extra in rounds:
        with fake_robot("--clock", "lockstep", "--seed", "0") as (_sim, pty):
            res = run_roach(
                "run", "--port", pty, "--model", str(random_model_file), "--steps", steps,
                "--log", str(tmp_path / f"{name}.mcap"), *extra,
            )  # fmt: skip
        times[name] = _tick_p50(res)
    print(
        f"tick p50 without --live {times['without']:.2f} ms, with --live {times['with']:.2f} ms "
        f"(ratio {times['with'] / times['without']:.2f})"
    )
