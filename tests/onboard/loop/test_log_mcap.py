"""Run logs: MCAP roundtrip, and a file cut at any byte (kill -9) still reads its ticks."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap.exceptions import EndOfFile
from mcap.opcode import Opcode
from mcap.reader import NonSeekingReader, make_reader

from onboard.logging_mcap import (
    TOPIC_EVENT,
    TOPIC_RUN,
    TOPIC_TICK,
    TickLogWriter,
    read_log,
)

N_TICKS = 40


def _tick(k: int) -> dict:
    return {
        "tick": k,
        "t_monotonic_s": 100.0 + 0.1 * k,
        "state": np.arange(24, dtype=np.float64) + k,
        "command": {"kind": "plan", "left_rev_s": 5.0 + k, "right_rev_s": math.nan},
        "timing": {"adapt_ms": 1.0, "plan_ms": 2.0},
        "events": [],
    }


def _write_log(path: Path, finish: bool = True) -> int:
    """Writes a run record, N_TICKS ticks and one event; returns the size before finish."""
    w = TickLogWriter(path, sync_every_s=0.0)
    w.write(TOPIC_RUN, {"log_format_version": 1, "config": {"loop": {"steps": N_TICKS}}})
    for k in range(N_TICKS):
        w.write(TOPIC_TICK, _tick(k))
        if k == 5:
            w.write(TOPIC_EVENT, {"tick": k, "kind": "stale_pose", "count": 1})
    size = path.stat().st_size
    if finish:
        w.close({"ticks": N_TICKS})
    return size


@pytest.fixture(scope="module")
def finished_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("log") / "run.mcap"
    return path, _write_log(path)


def test_roundtrip_every_tick_event_and_summary(finished_log: tuple[Path, int]) -> None:
    """A finished log reads back every tick in order, numpy arrays as lists, NaN as null."""
    log = read_log(finished_log[0])
    assert log.finished and log.summary == {"ticks": N_TICKS}
    assert log.run is not None and log.run["config"]["loop"]["steps"] == N_TICKS
    assert [t["tick"] for t in log.ticks] == list(range(N_TICKS))
    assert log.ticks[3]["state"] == [float(i + 3) for i in range(24)]
    assert log.ticks[3]["command"]["right_rev_s"] is None
    assert [e["kind"] for e in log.events] == ["stale_pose"]


def test_finished_log_opens_with_the_mcap_indexed_reader(finished_log: tuple[Path, int]) -> None:
    """The mcap library's make_reader reads it, with JSON-schema schemas on every channel."""
    with open(finished_log[0], "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        topics = [c.topic for _s, c, _m in reader.iter_messages()]
    assert topics.count(TOPIC_TICK) == N_TICKS
    for schema in summary.schemas.values():
        assert schema.encoding == "jsonschema"
        json.loads(schema.data)


@settings(max_examples=60, deadline=None)
@given(frac=st.floats(min_value=0.0, max_value=1.0))
def test_cut_at_any_byte_reads_every_complete_tick(
    finished_log: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory, frac: float
) -> None:
    """A copy cut at an arbitrary byte (what kill -9 leaves) yields exactly the ticks before
    the cut, with the mcap library's NonSeekingReader and with read_log alike."""
    path, _ = finished_log
    data = path.read_bytes()
    cut = int(frac * len(data))
    cut_path = tmp_path_factory.mktemp("cut") / "cut.mcap"
    cut_path.write_bytes(data[:cut])
    log = read_log(cut_path)
    # Every tick whose record ends before the cut is there; none after it.
    ends = _tick_record_ends(data)
    expected = sum(1 for end in ends if end <= cut)
    assert [t["tick"] for t in log.ticks] == list(range(expected))
    if cut < 8:
        return  # not even the magic: nothing to open
    got = []
    with open(cut_path, "rb") as f:
        try:
            for _s, channel, msg in NonSeekingReader(f).iter_messages(log_time_order=False):
                if channel.topic == TOPIC_TICK:
                    got.append(json.loads(msg.data)["tick"])
        except (EndOfFile, struct.error):
            pass  # how the library reports the cut-off last record
    assert got == list(range(expected))


def test_unfinished_log_keeps_every_tick(tmp_path: Path) -> None:
    """A writer that never closes (process killed) leaves a file with all ticks readable."""
    path = tmp_path / "unfinished.mcap"
    _write_log(path, finish=False)
    log = read_log(path)
    assert not log.finished and len(log.ticks) == N_TICKS and log.summary is None


def test_not_mcap_is_refused(tmp_path: Path) -> None:
    """A file that is not MCAP raises instead of reading as an empty run."""
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"this is not an mcap file at all")
    with pytest.raises(Exception, match="magic"):
        read_log(bad)


def _tick_record_ends(data: bytes) -> list[int]:
    """Byte offsets where each tick message record ends (walks the MCAP record framing)."""
    ends, pos, tick_channel = [], 8, None
    while pos + 9 <= len(data):
        opcode, length = struct.unpack_from("<BQ", data, pos)
        body = data[pos + 9 : pos + 9 + length]
        if opcode == Opcode.CHANNEL:
            (cid,) = struct.unpack_from("<H", body, 0)
            (tlen,) = struct.unpack_from("<I", body, 4)
            if body[8 : 8 + tlen].decode() == TOPIC_TICK:
                tick_channel = cid
        elif opcode == Opcode.MESSAGE and struct.unpack_from("<H", body, 0)[0] == tick_channel:
            ends.append(pos + 9 + length)
        elif opcode == Opcode.FOOTER:
            break
        pos += 9 + length
    return ends
