"""Throughput of the frame decoder and message codecs, against the link's byte rate.

A 1 Mbaud UART with 8N1 framing carries at most 100 000 bytes/s; the decoder has to
keep up with that on the robot's computer with room to spare for the controller.
``run_codec_bench`` returns the numbers; ``roach bench codec`` prints them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.frame import FrameDecoder
from firmware_bridge.messages import PoseMsg, TelemetryMsg, decode_message, encode_message
from firmware_bridge.records import Pose, Telemetry

LINK_BYTES_PER_S = 100_000
"""1 Mbaud, 10 bits per byte (start + 8 data + stop)."""


@dataclass(frozen=True)
class CodecResult:
    name: str
    frames_per_s: float
    mbytes_per_s: float

    @property
    def link_ratio(self) -> float:
        """How many 1 Mbaud links' worth of bytes this rate is."""
        return self.mbytes_per_s * 1e6 / LINK_BYTES_PER_S


def telemetry_stream(pairs: int, seed: int = 0) -> bytes:
    """Wire bytes of ``pairs`` TELEMETRY + POSE frames with realistic, varied fields."""
    rng = random.Random(seed)
    out = []
    for i in range(pairs):
        pos = rng.randint(-(1 << 24), 1 << 24)
        sensors = [rng.randint(-4000, 4000) for _ in range(10)] + [3900]
        tel = Telemetry(i, i * 10_000, pos, pos + 999, pos + 50, pos + 1049, *sensors)
        pose = Pose(rng.uniform(-2, 2), rng.uniform(-2, 2), 0.02, 0.01, -0.02,
                    rng.uniform(-3, 3), i * 10_000)  # fmt: skip
        out.append(encode_message(TelemetryMsg(0x11, tel), 2 * i))
        out.append(encode_message(PoseMsg(pose), 2 * i + 1))
    return b"".join(out)


def _time_best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_codec_bench(pairs: int = 20_000, chunk: int = 4096, repeats: int = 3) -> list[CodecResult]:
    """Decoder (frames only, and frames + messages) and encoder throughput, best of
    ``repeats``, on a stream fed in ``chunk``-byte reads."""
    stream = telemetry_stream(pairs)
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    n_frames = 2 * pairs
    mb = len(stream) / 1e6

    def frames_only() -> None:
        dec = FrameDecoder()
        for c in chunks:
            dec.feed(c)
        assert dec.frames_ok == n_frames

    def frames_and_messages() -> None:
        dec = FrameDecoder()
        for c in chunks:
            for f in dec.feed(c):
                decode_message(f)

    dec = FrameDecoder()
    msgs = [decode_message(f) for c in chunks for f in dec.feed(c)]

    def encode() -> None:
        for i, m in enumerate(msgs):
            encode_message(m, i)

    results = []
    for name, fn in (
        (f"decode frames ({chunk} B reads)", frames_only),
        (f"decode frames + messages ({chunk} B reads)", frames_and_messages),
        ("encode messages + frames", encode),
    ):
        dt = _time_best(fn, repeats)
        results.append(CodecResult(name, n_frames / dt, mb / dt))
    return results
