"""Starting and stopping the fake robot subprocess (firmware_bridge/fake/process.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware_bridge.fake.process import running_fake, start_fake, stop_fake
from robot_contract.errors import LinkError

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def test_running_fake_yields_a_live_pty_and_stops_it() -> None:
    """The path it yields is a pseudo-terminal while the fake runs; the fake exits after."""
    with running_fake("--clock", "lockstep", cwd=str(REPO)) as (proc, path):
        assert os.path.exists(path) and proc.poll() is None
    assert proc.poll() is not None


def test_stop_fake_returns_the_stats_line() -> None:
    """What the fake prints after its path (the exit `stats` line) comes back from stop."""
    proc, _path = start_fake("--clock", "lockstep", cwd=str(REPO))
    out, _err = stop_fake(proc)
    assert proc.returncode == 0 and out.startswith("stats {")


def test_a_fake_that_does_not_start_is_one_line_link_error() -> None:
    """Bad arguments: LinkError quoting the fake's own one-line error."""
    with pytest.raises(LinkError, match="bogus") as info:
        start_fake("--faults", "bogus=1", cwd=str(REPO))
    assert "\n" not in str(info.value)
