"""Fault injection for the fake robot's serial line: corruption, drops, latency, cuts.

``parse_faults("corrupt=0.01,drop=0.05,delay_ms=30,jitter_ms=20,disconnect_at=5:1")``
gives a ``FaultSpec``; a ``FaultyChannel`` applies it to one direction of the line,
frame by frame (docs/protocol.md, "Fault injection"), and counts what it did so tests
can compare injected faults with what the receivers observed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from robot_contract.errors import ConfigError

FAULT_KEYS = ("corrupt", "drop", "delay_ms", "jitter_ms", "after_frames", "disconnect_at")


@dataclass(frozen=True)
class FaultSpec:
    """What to inject, per frame, in both directions."""

    corrupt: float = 0.0
    """Probability that a frame gets one byte replaced by a different non-zero byte."""
    drop: float = 0.0
    """Probability that a frame is not delivered."""
    delay_ms: float = 0.0
    """Latency added to every frame, ms."""
    jitter_ms: float = 0.0
    """Extra latency, uniform in 0..jitter_ms per frame (order is kept), ms."""
    disconnects: tuple[tuple[float, float], ...] = ()
    """(at_s, duration_s): close the pseudo-terminal at_s after start, for duration_s."""
    after_frames: int = 0
    """The first this many frames of each direction are neither corrupted nor dropped
    (a client's start sequence, which its link counters may leave out)."""

    @property
    def touches_frames(self) -> bool:
        return bool(self.corrupt or self.drop or self.delay_ms or self.jitter_ms)


def parse_faults(text: str) -> FaultSpec:
    """Parses ``key=value,...``; ConfigError naming the bad key and the valid ones."""
    values: dict[str, float] = {}
    cuts: list[tuple[float, float]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in FAULT_KEYS:
            raise ConfigError(
                f"--faults: unknown or incomplete item {item!r}; valid keys: "
                f"{', '.join(k + '=' for k in FAULT_KEYS)} (e.g. 'drop=0.05,disconnect_at=5:1')"
            )
        if key == "disconnect_at":
            at, colon, dur = value.partition(":")
            try:
                cut = (float(at), float(dur) if colon else -1.0)
            except ValueError:
                cut = (-1.0, -1.0)
            if not (cut[0] >= 0 and cut[1] > 0):
                raise ConfigError(
                    f"--faults: disconnect_at={value!r} must be AT_S:DURATION_S with "
                    "AT_S >= 0 and DURATION_S > 0 (e.g. disconnect_at=5:1)"
                )
            cuts.append(cut)
            continue
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        limit = {"corrupt": 1.0, "drop": 1.0, "after_frames": 1e9}.get(key, 60_000.0)
        if not 0.0 <= number <= limit or (key == "after_frames" and number != int(number)):
            kind = "a whole number" if key == "after_frames" else "a number"
            raise ConfigError(f"--faults: {key}={value!r} must be {kind} in 0..{limit:g}")
        values[key] = number
    after = int(values.pop("after_frames", 0))
    return FaultSpec(disconnects=tuple(sorted(cuts)), after_frames=after, **values)


class FaultyChannel:
    """One direction of the line. Push wire bytes in, pop them out when due.

    Frames are the byte runs up to and including each 0x00; bytes after the last
    delimiter wait for the rest of their frame.
    """

    def __init__(self, spec: FaultSpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng
        self._partial = b""
        self._queue: deque[tuple[float, bytes]] = deque()
        self._last_due = 0.0
        self.frames = 0
        self.dropped = 0
        self.corrupted = 0
        self.lost_disconnected = 0

    def counters(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "corrupted": self.corrupted,
            "lost_disconnected": self.lost_disconnected,
        }

    def push(self, data: bytes, now: float) -> None:
        if not self.spec.touches_frames:
            self._queue.append((now, data))
            return
        parts = (self._partial + data).split(b"\x00")
        self._partial = parts.pop()
        for part in parts:
            self._push_frame(part, now)

    def _push_frame(self, body: bytes, now: float) -> None:
        spec, rng = self.spec, self._rng
        if not body:  # a lone delimiter (idle fill) is not a frame
            self._enqueue(b"\x00", now)
            return
        self.frames += 1
        if self.frames <= spec.after_frames:
            self._enqueue(body + b"\x00", now)
            return
        if spec.drop and rng.random() < spec.drop:
            self.dropped += 1
            return
        if spec.corrupt and rng.random() < spec.corrupt:
            i = rng.randrange(len(body))
            new = rng.randrange(1, 255)
            new += new >= body[i]  # any non-zero byte but the original
            body = body[:i] + bytes((new,)) + body[i + 1 :]
            self.corrupted += 1
        self._enqueue(body + b"\x00", now)

    def _enqueue(self, data: bytes, now: float) -> None:
        spec = self.spec
        delay = spec.delay_ms + (self._rng.uniform(0.0, spec.jitter_ms) if spec.jitter_ms else 0.0)
        due = max(self._last_due, now + delay * 1e-3)
        self._last_due = due
        self._queue.append((due, data))

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now: float) -> bytes:
        out = []
        q = self._queue
        while q and q[0][0] <= now:
            out.append(q.popleft()[1])
        return b"".join(out)

    def discard(self) -> None:
        """The line is cut: everything in flight is lost."""
        self.lost_disconnected += sum(d.count(b"\x00") for _, d in self._queue)
        self._queue.clear()
        self._partial = b""
