"""`roach bench WHAT --quick` prints its numbers (nothing is asserted on time)."""

from __future__ import annotations

import pytest

from tools.cli import main


def test_roach_bench_codec_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """`roach bench codec --quick` prints frames/s, MB/s and the link ratio."""
    assert main(["bench", "codec", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "frames/s" in out and "MB/s" in out and "x link" in out


def test_roach_bench_sim_prints_the_real_time_factor(capsys: pytest.CaptureFixture[str]) -> None:
    """`roach bench sim --quick` prints the condition, the step cost and the factor."""
    assert main(["bench", "sim", "--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("condition: (nominal carpet); 5 x 2 s")
    assert lines[1].startswith("one 10 Hz control step: best ")
    assert lines[2].startswith("real-time factor: best ")


@pytest.mark.timeout(60)
def test_roach_bench_link_prints_the_period_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """`roach bench link --quick` runs 50 lockstep periods through the fake and says so."""
    assert main(["bench", "link", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "50 periods" in out and "control periods/s" in out
