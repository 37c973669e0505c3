"""The C board's 1 kHz PID driving the simulated motors, against the Python fake's PID."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.fake.c_firmware import CFirmware
from firmware_bridge.fake.firmware import FakeFirmware
from firmware_bridge.frame import FrameDecoder
from firmware_bridge.messages import (
    REPLY_TYPES,
    Message,
    SetCommandTimeout,
    SetLegVelocity,
    StartMotors,
    StartTelemetry,
    TelemetryMsg,
    decode_message,
    encode_message,
)
from firmware_bridge.records import ENCODER_COUNTS_PER_REV, Telemetry
from firmware_bridge.sim.robot import SimRobot

PROFILE = [(0.0, 2.0), (0.5, 8.0), (1.25, 5.0)]
"""(time s, setpoint rev/s) for both sides: a step up, then a step down."""
WINDOW_MS = 50


def leg_rates(board: str, condition: str = "") -> np.ndarray:
    """Left and right leg rates, rev/s, averaged over 50 ms windows, (n_windows, 2)."""
    sim = SimRobot(condition, seed=3)
    fw = CFirmware(sim, lockstep=False) if board == "c" else FakeFirmware(sim, lockstep=False)
    dec, seq = FrameDecoder(REPLY_TYPES), 0

    def feed(data: bytes) -> list[Message]:
        return [decode_message(f) for f in dec.feed(data)]

    def send(msg: Message) -> list[Message]:
        nonlocal seq
        seq += 1
        return feed(fw.receive(encode_message(msg, seq)))

    send(SetCommandTimeout(1000))
    send(StartTelemetry(1000))
    send(SetLegVelocity(2000, 2000))
    send(StartMotors())
    tel: list[Telemetry] = []
    for k in range(40):
        t = k * WINDOW_MS / 1000
        rev_s = [v for t0, v in PROFILE if t0 <= t][-1]
        send(SetLegVelocity.from_rev_s(rev_s, rev_s))
        tel += [m.record for m in feed(fw.advance_to((k + 1) * WINDOW_MS))
                if isinstance(m, TelemetryMsg)]  # fmt: skip
    pos = np.array([(r.left_pos, r.right_pos) for r in tel], dtype=float)
    ts = np.array([r.timestamp_us for r in tel], dtype=float) * 1e-6
    idx = np.searchsorted(ts, np.arange(0, 2.0 + 1e-9, WINDOW_MS / 1000) + 1e-4)
    idx = idx[idx < len(ts)]
    return np.diff(pos[idx], axis=0) / np.diff(ts[idx])[:, None] / ENCODER_COUNTS_PER_REV


@pytest.mark.parametrize("condition", ["", "terrain=turf,payload_g=8"])
def test_step_response_matches_the_python_fake(board_lib, condition):
    """Up 2 -> 8 rev/s and down to 5: the C PID's leg rates follow the Python fake's within
    0.4 rev/s in every 50 ms window (stride to stride the rate varies more on turf) and
    within 2 % once settled."""
    py, c = leg_rates("python", condition), leg_rates("c", condition)
    assert py.shape == c.shape and len(c) >= 38
    assert np.max(np.abs(py - c)) < 0.4, np.round(np.c_[py, c], 2)
    settled = {"8": slice(16, 25), "5": slice(31, None)}
    for target, window in settled.items():
        assert np.mean(c[window]) == pytest.approx(float(target), rel=0.02)
        assert np.mean(c[window]) == pytest.approx(np.mean(py[window]), rel=0.02)
    # The rise: both cross 7 rev/s in the same 50 ms window after the step at 0.5 s.
    rise = [int(np.argmax(x[10:, 0] > 7.0)) for x in (py, c)]
    assert abs(rise[0] - rise[1]) <= 1
