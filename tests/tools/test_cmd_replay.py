"""`roach replay`: summary of a logged run and the offline adaptation replay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import fake_robot, run_roach

from onboard.adaptation import CHANGE_GAIN, CHANGE_RATIO, CHANGE_ROWS, Adapter
from onboard.logging_mcap import read_log
from onboard.model import load_model
from onboard.replay import replay_adaptation

STEPS = 30


@pytest.fixture(scope="module")
def lockstep_log(random_model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short lockstep run of the random model, logged."""
    log_path = tmp_path_factory.mktemp("replay") / "run.mcap"
    with fake_robot("--clock", "lockstep", "--seed", "1") as (_sim, pty):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--steps", str(STEPS),
            "--lockstep", "--log", str(log_path),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return log_path


def test_replay_reproduces_the_logged_adaptation_losses(
    lockstep_log: Path, random_model_file: Path
) -> None:
    """Re-running adaptation on the logged transitions, in the run's mode (the default,
    steps kept), gives the losses the loop logged."""
    log = read_log(lockstep_log)
    run_adaptation = log.run["adaptation"]  # type: ignore[index]
    assert run_adaptation["mode"] == "dyn-eval"
    rule = (
        run_adaptation["change_ratio"],
        run_adaptation["change_rows"],
        run_adaptation["change_gain"],
    )
    assert rule == (CHANGE_RATIO, CHANGE_ROWS, CHANGE_GAIN)
    assert {"window", "change"} <= set(log.ticks[-1]["adaptation"])
    adapter = Adapter(load_model(random_model_file), "dyn-eval")
    rows = replay_adaptation(log.ticks, adapter)
    assert [r.tick for r in rows] == list(range(STEPS))
    for row, tick in zip(rows, log.ticks):
        logged = tick["adaptation"]
        for got, want in ((row.window_before, logged["loss_before"]),
                          (row.window_after, logged["loss_after"])):  # fmt: skip
            assert (want is None and math.isnan(got)) or got == pytest.approx(want, rel=1e-6)
    assert rows[-1].n == min(STEPS - 1, adapter.M)
    assert all(math.isfinite(r.next_meta) for r in rows[:-1]) and math.isnan(rows[-1].next_meta)


def test_replay_command_prints_summary_and_per_tick_errors(lockstep_log: Path) -> None:
    """`roach replay LOG` prints ticks, events, timings, tracking and one row per tick."""
    res = run_roach("replay", str(lockstep_log))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    print(out)
    assert f"{STEPS} ticks, finished" in out and "step time (adapt + plan): p50" in out
    assert "tracking (" in out and "next-step error" in out
    rows = [ln for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()]
    assert len(rows) == STEPS


def test_replay_of_a_cut_log_and_chain_breaks(lockstep_log: Path, tmp_path: Path) -> None:
    """A log cut short replays its complete ticks; a stop tick restarts the window."""
    data = lockstep_log.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    res = run_roach("replay", str(cut), "--quiet", "--mode", "dyn-eval")
    assert res.returncode == 0, res.stderr
    assert "unfinished" in res.stdout and "mode dyn-eval" in res.stdout

    log = read_log(lockstep_log)
    ticks = [dict(t) for t in log.ticks]
    ticks[10] = dict(ticks[10], command={"kind": "stop", "left_rev_s": None, "right_rev_s": None})
    adapter = Adapter(load_model(log.run["model"]["path"]), "grbal")  # type: ignore[index]
    rows = replay_adaptation(ticks, adapter)
    assert rows[11].n == 0 and rows[12].n == 1
    assert np.isnan(rows[10].next_meta)


def test_replay_refuses_a_missing_or_foreign_file(tmp_path: Path) -> None:
    """A missing log or a non-MCAP file: one line, exit 2."""
    (tmp_path / "x.mcap").write_text("not mcap")
    for path in (tmp_path / "absent.mcap", tmp_path / "x.mcap"):
        res = run_roach("replay", str(path))
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
