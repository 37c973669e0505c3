"""`roach replay LOG --check` re-runs the controller on a run's logged inputs: a fresh
lockstep run (also one cut short) is reproduced exactly, and a copy with one command
changed is caught at that tick."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import SHIPPED_GRBAL, fake_robot, run_roach

from onboard.logging_mcap import TOPIC_RUN, TOPIC_SUMMARY, TOPIC_TICK, TickLogWriter, read_log


@pytest.fixture(scope="module")
def lockstep_log(random_model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-tick `roach run` log against the lockstep fake under a mid-run condition."""
    log_path = tmp_path_factory.mktemp("replay") / "run.mcap"
    with fake_robot("--clock", "lockstep", "--seed", "4", "--condition", "gain_left=0.5@1") as (
        _sim,
        pty,
    ):
        res = run_roach(
            "run", "--port", pty, "--model", str(random_model_file), "--task", "figure8",
            "--steps", "30", "--log", str(log_path),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return log_path


def test_fresh_log_is_reproduced_exactly(lockstep_log: Path, tmp_path: Path) -> None:
    """Every one of the 30 commands comes out bit for bit; the log holds what the check
    needs (model sha256, planner random state), so there are no notes."""
    out = tmp_path / "check.json"
    res = run_roach("replay", str(lockstep_log), "--check", "--json", str(out))
    print(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "replay check: 30 ticks, every command reproduced exactly" in res.stdout
    check = json.loads(out.read_text())["check"]
    assert check["exact"] and check["ticks"] == 30 and check["notes"] == []


def _rewrite(src: Path, dst: Path, tick: int, delta: float) -> None:
    log = read_log(src)
    assert log.run is not None
    with TickLogWriter(dst) as w:
        w.write(TOPIC_RUN, log.run)
        for t in log.ticks:
            if t["tick"] == tick:
                t["command"]["left_rev_s"] += delta
            w.write(TOPIC_TICK, t)
        w.write(TOPIC_SUMMARY, log.summary or {})


def test_one_changed_command_is_named(lockstep_log: Path, tmp_path: Path) -> None:
    """A copy with tick 17's left command 0.125 rev/s higher: exit 1, tick 17 named with
    the difference, and it is the only tick that differs."""
    changed = tmp_path / "changed.mcap"
    _rewrite(lockstep_log, changed, 17, 0.125)
    out = tmp_path / "check.json"
    res = run_roach("replay", str(changed), "--check", "--json", str(out))
    print(res.stdout)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "1 commands differ; first at tick 17: logged plan (" in res.stdout
    assert "differs by 0.125 rev/s" in res.stdout
    check = json.loads(out.read_text())["check"]
    assert check["first_differing_tick"] == 17 and check["differing_ticks"] == 1


def test_log_cut_short_is_reproduced_up_to_its_last_tick(
    lockstep_log: Path, tmp_path: Path
) -> None:
    """A log cut mid-file (as by kill -9) replays exactly over the ticks it holds."""
    cut = tmp_path / "cut.mcap"
    shutil.copy(lockstep_log, cut)
    data = cut.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    n = len(read_log(cut).ticks)
    assert 5 < n < 30
    res = run_roach("replay", str(cut), "--check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"replay check: {n} ticks, every command reproduced exactly" in res.stdout


def test_to_dataset_plot_and_counterfactual_model(lockstep_log: Path, tmp_path: Path) -> None:
    """--to-dataset writes the 29 transitions of the 30 planned ticks in the training
    format (read back by the training loader); --plot writes a PNG; --model OTHER --mode
    gives per-tick and total prediction errors with and without adaptation."""
    from offboard_training.dataset import load_dataset

    out = tmp_path / "r.json"
    res = run_roach(
        "replay", str(lockstep_log), "--model", str(SHIPPED_GRBAL), "--mode", "grbal",
        "--quiet", "--to-dataset", str(tmp_path / "ds"), "--plot", str(tmp_path / "r.png"),
        "--json", str(out),
    )  # fmt: skip
    print(res.stdout)
    assert res.returncode == 0, res.stderr
    episodes, summary = load_dataset([tmp_path / "ds"])
    assert summary["episodes"] == 1 and summary["transitions"] == 29
    log = read_log(lockstep_log)
    assert episodes[0].states[0].tolist() == log.ticks[0]["state"]
    assert episodes[0].actions[3].tolist() == [
        log.ticks[3]["command"]["left_rev_s"], log.ticks[3]["command"]["right_rev_s"]
    ]  # fmt: skip
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads(out.read_text())
    assert len(data["adaptation"]) == 30 and data["total"]["scored_ticks"] == 29
    assert data["total"]["next_meta"] > 0 and data["total"]["next_adapted"] > 0
