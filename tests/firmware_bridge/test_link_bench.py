"""The link benchmark runs against the lockstep fake and reports its round trips."""

from __future__ import annotations

import pytest

from firmware_bridge.link_bench import report_lines, run_link_bench

pytestmark = pytest.mark.timeout(60)


def test_link_bench_times_every_period() -> None:
    """One positive round trip per period, sorted; two report lines with the count."""
    r = run_link_bench(steps=5)
    assert r.periods == 5 and list(r.round_trips_s) == sorted(r.round_trips_s)
    assert r.round_trips_s[0] > 0 and r.periods_per_s > 0
    lines = report_lines(r)
    assert len(lines) == 2 and "5 periods" in lines[0] and "control periods/s" in lines[1]
