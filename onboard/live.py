"""The live view of ``roach run --live``: the running controller served to Foxglove.

A Foxglove WebSocket server (the ``foxglove-sdk`` package, the ``live`` extra; bound to
127.0.0.1 unless told otherwise) with these channels:

| topic | schema | what |
|---|---|---|
| ``/roach/pose`` | foxglove.PoseInFrame | the measured pose, frame ``world`` |
| ``/roach/path`` | foxglove.PosesInFrame | the task's target path (re-sent every second) |
| ``/roach/plan`` | foxglove.PosesInFrame | the best candidate's plan through the adapted model |
| ``/roach/command`` | JSON | the command sent (rev/s) and its kind |
| ``/roach/adaptation`` | JSON | the window loss before and after the adaptation step |
| ``/roach/timing`` | JSON | step time (adapt + plan) and the whole tick, ms |

The tick never waits for it: ``publish`` (a ``Controller.observers`` entry) only puts a
few numbers on a bounded queue, at most ``MAX_RATE_HZ`` times a second; a thread of its
own encodes and sends them, and drops the oldest when it falls behind. Nothing in the
loop needs it to drive.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from onboard.loop import Controller
from onboard.pose_log import quaternion
from onboard.tick_record import TickRecord
from robot_contract.errors import ConfigError

MAX_RATE_HZ = 20.0
"""Ticks published per second at most: every tick on the robot (10 Hz); a lockstep run
ticks far faster than a viewer can follow, and each sample sent is work for the live
thread that competes with the tick for the interpreter."""
PLAN_EVERY_S = 0.5
"""How often the planned trajectory is rolled out and sent (it costs a model rollout)."""
PATH_EVERY_S = 1.0


def planned_xy(ctl: Controller, state: np.ndarray, params: np.ndarray, seq: np.ndarray) -> list:
    """[(x, y)] of the states the adapted model predicts for actions ``seq`` [H, 2]."""
    model = ctl.adapter.model
    s = np.asarray(state, np.float64).copy()
    out = [(float(s[0]), float(s[1]))]
    for a in np.asarray(seq, np.float64):
        x = np.concatenate([s[2:], a])[None, :]
        d = model.predict_delta_norm(x, params)[0] * model.delta_std + model.delta_mean
        s = s + d
        out.append((float(s[0]), float(s[1])))
    return out


class LiveView:
    """Serves ``ctl``'s ticks on ws://HOST:PORT until ``close``. ConfigError (one line)
    if the package is missing or the port cannot be bound."""

    def __init__(self, ctl: Controller, host: str = "127.0.0.1", port: int = 8765) -> None:
        try:
            import foxglove
            from foxglove import channels, messages
        except ImportError:
            raise ConfigError(
                "--live needs the foxglove-sdk package: pip install -e '.[live]'"
            ) from None
        self._fg, self._msg = foxglove, messages
        self.ctl = ctl
        try:
            self.server = foxglove.start_server(name="roach run", host=host, port=port)
        except Exception as exc:  # the SDK raises its own error types
            raise ConfigError(f"--live: cannot serve on {host}:{port}: {exc}") from None
        self.port = self.server.port
        self._pose = channels.PoseInFrameChannel("/roach/pose")
        self._path = channels.PosesInFrameChannel("/roach/path")
        self._plan = channels.PosesInFrameChannel("/roach/plan")
        self._command = foxglove.Channel("/roach/command", schema=_schema("command"))
        self._adapt = foxglove.Channel("/roach/adaptation", schema=_schema("adaptation"))
        self._timing = foxglove.Channel("/roach/timing", schema=_schema("timing"))
        self._queue: deque[dict[str, Any]] = deque(maxlen=64)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._want_plan = True
        self._last_path = -math.inf
        self._last_publish = -math.inf
        self.published = 0
        self._thread = threading.Thread(target=self._serve, name="live-view", daemon=True)
        self._thread.start()

    # -- on the tick: a few numbers onto the queue -----------------------------------------

    def publish(self, rec: TickRecord) -> None:
        now = time.monotonic()
        if now - self._last_publish < 1.0 / MAX_RATE_HZ:
            return
        self._last_publish = now
        item: dict[str, Any] = {"tick": rec.tick, "t_ns": time.time_ns()}
        if rec.pose is not None:
            p = rec.pose.value
            item["pose"] = (p.x, p.y, p.z, p.roll, p.pitch, p.yaw)
        sent = rec.sent
        item["command"] = {
            "tick": rec.tick,
            "kind": "plan" if sent is not None else "stop",
            "left_rev_s": None if sent is None else float(sent[0]),
            "right_rev_s": None if sent is None else float(sent[1]),
        }
        if rec.adapt is not None:
            item["adaptation"] = {
                "tick": rec.tick,
                "loss_before": _num(rec.adapt.loss_before),
                "loss_after": _num(rec.adapt.loss_after),
            }
        item["timing"] = {"tick": rec.tick, "step_ms": (rec.adapt_s + rec.plan_s) * 1e3}
        if self._want_plan and rec.plan is not None and rec.state is not None:
            self._want_plan = False
            item["plan"] = (rec.state.copy(), self.ctl.adapter.params.copy(),
                            np.array(rec.plan.best_sequence, np.float64))  # fmt: skip
        self._queue.append(item)
        self._wake.set()

    # -- on the thread: encode and send ----------------------------------------------------

    def _serve(self) -> None:
        last_plan = -math.inf
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            while self._queue:
                item = self._queue.popleft()
                try:
                    self._send(item)
                except Exception:  # a bad sample must not end the live view
                    continue
            now = time.monotonic()
            if now - last_plan >= PLAN_EVERY_S:
                last_plan = now
                self._want_plan = True

    def _send(self, item: dict[str, Any]) -> None:
        m, t_ns = self._msg, item["t_ns"]
        ts = m.Timestamp(sec=t_ns // 1_000_000_000, nsec=t_ns % 1_000_000_000)
        if "pose" in item:
            x, y, z, roll, pitch, yaw = item["pose"]
            qx, qy, qz, qw = quaternion(roll, pitch, yaw)
            pose = m.Pose(
                position=m.Vector3(x=x, y=y, z=z), orientation=m.Quaternion(x=qx, y=qy, z=qz, w=qw)
            )
            self._pose.log(m.PoseInFrame(timestamp=ts, frame_id="world", pose=pose))
            self.published += 1
        task = self.ctl.objective.task
        if task is not None and time.monotonic() - self._last_path >= PATH_EVERY_S:
            self._last_path = time.monotonic()
            self._path.log(self._poses(ts, [(float(a), float(b)) for a, b in task.points]))
        if "plan" in item:
            state, params, seq = item["plan"]
            self._plan.log(self._poses(ts, planned_xy(self.ctl, state, params, seq)))
        self._command.log(item["command"])
        if "adaptation" in item:
            self._adapt.log(item["adaptation"])
        self._timing.log(item["timing"])

    def _poses(self, ts: Any, xy: list) -> Any:
        m = self._msg
        unit = m.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)
        poses = [m.Pose(position=m.Vector3(x=x, y=y, z=0.0), orientation=unit) for x, y in xy]
        return m.PosesInFrame(timestamp=ts, frame_id="world", poses=poses)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=2.0)
        self.server.stop()


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _schema(kind: str) -> dict[str, Any]:
    fields = {
        "command": ["left_rev_s", "right_rev_s"],
        "adaptation": ["loss_before", "loss_after"],
        "timing": ["step_ms"],
    }[kind]
    props: dict[str, Any] = {"tick": {"type": "integer"}}
    props |= {f: {"type": ["number", "null"]} for f in fields}
    if kind == "command":
        props["kind"] = {"type": "string"}
    return {"type": "object", "properties": props}
