"""MCAP run and collection logs as training data (offboard_training/log_dataset.py):
chains cut at stops without their stopping state, crashed logs read to their last whole
tick, one-line errors, pooled with dataset folders by ``load_dataset``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offboard_training.dataset import Episode, load_dataset, write_episode, write_manifest
from offboard_training.errors import DatasetError
from offboard_training.log_dataset import EPISODE_STEPS, episodes_from_log
from onboard.logging_mcap import TOPIC_RUN, TOPIC_TICK, TickLogWriter


def _tick(k: int, kind: str = "plan", state: bool = True) -> dict:
    s = [float(k)] + [0.5] * 23
    cmd = {"kind": kind, "left_rev_s": 3.0 + k % 3 if kind == "plan" else None,
           "right_rev_s": 4.0 if kind == "plan" else None}  # fmt: skip
    return {"tick": k, "state": s if state else None, "command": cmd}


def _log(path: Path, ticks: list[dict], run: dict | None = None, close: bool = True) -> Path:
    w = TickLogWriter(path)
    w.write(TOPIC_RUN, run or {"kind": "collect", "label": "turf"})
    for t in ticks:
        w.write(TOPIC_TICK, t)
    if close:
        w.close({"ticks": len(ticks)})
    return path


def test_stops_end_episodes_and_their_state_is_dropped(tmp_path: Path) -> None:
    """Ticks 0..9 drive, 10 stops (its state is the stop's reason), 11..20 drive: two
    episodes, 0..9 with 9 transitions (the command of tick 9 has no usable outcome) and
    11..20 with 9; none spans tick 10; labels and policy come from the run record."""
    ticks = [_tick(k) for k in range(10)] + [_tick(10, "stop")] + [_tick(k) for k in range(11, 21)]
    eps, info = episodes_from_log(_log(tmp_path / "a.mcap", ticks))
    assert [e.steps for e in eps] == [9, 9]
    assert eps[0].states[:, 0].tolist() == list(range(10))
    assert eps[1].states[:, 0].tolist() == list(range(11, 21))
    assert all(e.condition == "terrain=turf" and e.policy == "random" for e in eps)
    assert info["finished"] and info["kind"] == "collect"


def test_a_crashed_log_is_used_to_its_last_whole_tick(tmp_path: Path) -> None:
    """A log never closed and cut mid-record: every whole tick before the cut is used."""
    path = _log(tmp_path / "c.mcap", [_tick(k) for k in range(50)], close=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the last tick cut in half
    eps, info = episodes_from_log(path)
    assert not info["finished"] and [e.steps for e in eps] == [48]  # ticks 0..48, 48 steps


def test_long_sessions_are_cut_into_published_length_episodes(tmp_path: Path) -> None:
    """A 300-tick session: episodes of 110, 110 and 79 transitions, contiguous."""
    eps, _ = episodes_from_log(_log(tmp_path / "l.mcap", [_tick(k) for k in range(300)]))
    assert [e.steps for e in eps] == [EPISODE_STEPS, EPISODE_STEPS, 79]
    assert eps[1].states[0, 0] == eps[0].states[-1, 0] == 110


def test_load_dataset_pools_log_folders_and_dataset_folders(tmp_path: Path) -> None:
    """A folder of logs (a run log among them) and a simulated dataset folder load together."""
    logs = tmp_path / "logs"
    logs.mkdir()
    _log(logs / "collect.mcap", [_tick(k) for k in range(30)])
    _log(logs / "run.mcap", [_tick(k) for k in range(20)], run={"model": {"path": "m"}})
    ds = tmp_path / "ds"
    ds.mkdir()
    rng = np.random.default_rng(0)
    write_episode(ds / "ep_00000.npz", Episode(rng.normal(size=(11, 24)),
                                               rng.uniform(2, 9, (10, 2)), "", 0))  # fmt: skip
    write_manifest(ds, [{"file": "ep_00000.npz"}], {})
    episodes, summary = load_dataset([logs, ds])
    assert [e.steps for e in episodes] == [29, 19, 10]
    assert episodes[1].policy == "mpc" and summary["transitions"] == 58


def test_bad_logs_are_one_line_errors(tmp_path: Path) -> None:
    """Not MCAP, or no two driven ticks in a row: DatasetError, one line, naming the file."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mcap").write_bytes(b"not a log at all")
    with pytest.raises(DatasetError, match=r"x.mcap: not an MCAP run log"):
        load_dataset([bad])
    empty = tmp_path / "empty"
    empty.mkdir()
    _log(empty / "s.mcap", [_tick(0), _tick(1, "stop"), _tick(2), _tick(3, "stop")])
    with pytest.raises(DatasetError, match=r"empty: the logs hold no run of 2 or more"):
        load_dataset([empty])
