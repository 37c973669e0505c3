"""The codec benchmark runs and reports consistent numbers (no timing assertions)."""

from __future__ import annotations

from firmware_bridge.codec_bench import run_codec_bench, telemetry_stream
from firmware_bridge.frame import FrameDecoder


def test_bench_stream_is_valid():
    """The benchmark's stream decodes to exactly its frames with no errors."""
    dec = FrameDecoder()
    assert len(dec.feed(telemetry_stream(50))) == 100 and dec.errors == 0


def test_bench_reports_positive_rates():
    """Each benchmark line has positive frames/s and MB/s."""
    results = run_codec_bench(pairs=200, repeats=1)
    assert len(results) == 3
    assert all(r.frames_per_s > 0 and r.mbytes_per_s > 0 and r.link_ratio > 0 for r in results)
