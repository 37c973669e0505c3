"""Closed-loop evaluation: the recovery rule and the interval on known numbers, a real
episode of the shipped model against the in-process fake, and `roach eval` end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from offboard_training import closed_loop as cl
from robot_contract.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
GRBAL, MB = str(REPO / "models" / "grbal.onnx"), str(REPO / "models" / "mb.onnx")


def _roach(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _score(costs: list[float]) -> cl.EpisodeScore:
    case = cl.EvalCase("m.onnx", "grbal", "straight", "gain_left=0.5@3", 0)
    return cl.EpisodeScore(case, float(np.mean(costs)), 0, 0, 0, 0, 0, len(costs), costs=costs)


def test_recovery_is_the_first_second_back_within_20_percent_of_intact() -> None:
    """Onset at 3 s (tick 30): cost 10 until tick 45, then 1.1 against an intact 1.0: the
    1 s running mean is within 20 % once ten ticks after 45 are in, 2.5 s after onset."""
    intact = [1.0] * 110
    costs = [1.0] * 30 + [10.0] * 15 + [1.1] * 65
    s = _score(costs)
    cl._score_recovery(s, intact, 3.0, 0.1)
    assert s.recovered is True and s.intact_cost == pytest.approx(1.0)
    assert s.recovery_s == pytest.approx(2.5)


def test_never_recovered_and_negative_costs() -> None:
    """A cost that stays 50 % above intact never recovers; with negative (progress) costs
    the 20 % band is measured on the magnitude."""
    s = _score([-1.0] * 30 + [-0.5] * 80)
    cl._score_recovery(s, [-1.0] * 110, 3.0, 0.1)
    assert s.recovered is False and s.recovery_s is None
    s = _score([-1.0] * 30 + [-0.85] * 80)
    cl._score_recovery(s, [-1.0] * 110, 3.0, 0.1)
    assert s.recovered is True and s.recovery_s == pytest.approx(1.0)


def test_ci95_matches_student_t() -> None:
    """The 95 % half-width is t(0.975, n-1) * sd / sqrt(n); nan for one value."""
    assert cl.ci95([1.0, 2.0, 3.0]) == pytest.approx(4.30 * 1.0 / math.sqrt(3))
    assert math.isnan(cl.ci95([1.0]))


def test_shipped_grbal_episode_is_scored_on_the_true_pose(tmp_path: Path) -> None:
    """One short episode of the shipped GrBAL model through the real pty and codec: it
    follows the straight path, every tick has a true pose, and the score's positions are
    the simulator's, not the tracker's (which a 40 mm marker offset moves)."""
    from onboard.logging_mcap import read_log

    case = cl.EvalCase(GRBAL, "grbal", "straight", "pos_offset_mm=40", 0, steps=30)
    s = cl.run_episode(case, log_dir=str(tmp_path))
    assert s.ticks == 30 and len(s.costs) == 30 and s.stopped_by is None
    assert s.mean_distance_m < 0.05 and s.progress_m > 0.3
    assert s.recovered is None and s.recovery_s is None
    assert s.step_p50_ms > 0
    (log,) = tmp_path.glob("*.mcap")
    tracked = [(t["pose"]["x"], t["pose"]["y"]) for t in read_log(log).ticks]
    gap = np.hypot(*(np.asarray(tracked) - np.asarray(s.xy)).T)
    assert np.all(np.abs(gap - 0.040) < 0.005)


def test_onset_condition_runs_the_intact_twin_and_times_recovery() -> None:
    """A motor losing half its torque at 1 s: the intact twin runs, the episode gets an
    intact cost and a recovery verdict."""
    case = cl.EvalCase(GRBAL, "grbal", "straight", "gain_left=0.5@1", 0, steps=40)
    s = cl.run_episode(case)
    assert s.intact_cost is not None and s.recovered is not None
    if s.recovered:
        assert s.recovery_s is not None and 0 < s.recovery_s <= 3.0


def test_roach_eval_end_to_end_with_json(tmp_path: Path) -> None:
    """`roach eval` with two controllers, two jobs and --json: a table row per controller,
    every episode in the file, exit 0."""
    out = tmp_path / "eval.json"
    r = _roach(
        "eval", "--model", GRBAL, "--model", f"{MB}:none", "--task", "left",
        "--episodes", "2", "--steps", "25", "--jobs", "2", "--json", str(out), "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.split()[1:2] == ["left"]]
    assert len(rows) == 2 and rows[0].startswith("grbal:dyn-eval") and rows[1].startswith("mb:none")
    assert "grbal:dyn-eval - mb:none" in r.stdout and "better in" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["cases"] == 4 and len(doc["episodes"]) == 4
    assert {e["case"]["seed"] for e in doc["episodes"]} == {0, 1}
    assert all(len(e["costs"]) == 25 for e in doc["episodes"])


@pytest.mark.parametrize(
    ("args", "must_contain"),
    [
        (["--task", "spiral"], "--task 'spiral' unknown"),
        (["--condition", "slope_deg=90"], "slope_deg"),
        (["--mode", "maml"], "--mode 'maml' unknown"),
        (["--episodes", "0"], "--episodes 0 out of range"),
        (["--jobs", "0"], "--jobs 0 out of range"),
        (["--model", f"{MB},/no/such.onnx"], "'/no/such.onnx': no such model file"),
        (["--model", f"{MB},{MB}:none"], "a file is listed twice"),
        (["--model", f"{MB},,{GRBAL}"], "empty file name"),
    ],
)
def test_bad_inputs_are_one_line_exit_2(args: list[str], must_contain: str) -> None:
    """Each mistake is found before any episode runs: one line on stderr, exit code 2."""
    r = _roach("eval", "--model", GRBAL, "--steps", "5", "--quiet", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and must_contain in lines[0], r.stderr


def test_a_controller_can_carry_its_own_step(tmp_path: Path) -> None:
    """`FILE:MODE:STEP` runs that mode with that step; the label says so, and the step is
    what the controller used (a bad step is one line, exit 2)."""
    out = tmp_path / "eval.json"
    r = _roach(
        "eval", "--model", f"{MB}:dyn-eval:0.05", "--episodes", "1", "--steps", "15",
        "--json", str(out), "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert any(line.startswith("mb:dyn-eval:0.05 ") for line in r.stdout.splitlines())
    (episode,) = json.loads(out.read_text())["episodes"]
    assert episode["case"]["inner_lr"] == 0.05 and episode["case"]["mode"] == "dyn-eval"
    r = _roach("eval", "--model", f"{MB}:dyn-eval:fast", "--quiet")
    assert r.returncode == 2 and "step 'fast' is not a number" in r.stderr
    r = _roach("eval", "--model", f"{MB}:dyn-eval:0", "--steps", "5", "--quiet")
    assert r.returncode == 2 and "out of range" in r.stderr


def test_missing_or_corrupt_model_is_one_line_exit_2(tmp_path: Path) -> None:
    """A model path that does not exist, or a file that is not a model: exit 2, one line."""
    r = _roach("eval", "--model", str(tmp_path / "absent.onnx"), "--quiet")
    assert r.returncode == 2 and "no such model file" in r.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    r = _roach("eval", "--model", f"{bad}:grbal", "--quiet")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "bad.onnx" in r.stderr


def test_compare_pairs_by_seed_and_counts_significant_wins() -> None:
    """A beats B by 1.0 +- noise on every seed: a significant win; on a case where they
    differ by less than the noise it is only 'better' or 'worse'."""
    rng = np.random.default_rng(0)
    scores = []
    for seed in range(6):
        for model, cost_clear, cost_close in (("a.onnx", 1.0, 2.0), ("b.onnx", 2.0, 2.0)):
            for cond, cost in (("c1", cost_clear), ("c2", cost_close)):
                case = cl.EvalCase(model, "grbal", "straight", cond, seed)
                noise = 0.05 * rng.standard_normal()
                scores.append(cl.EpisodeScore(case, cost + noise, 0, 0, 0, 0, 0, 1))
    assert cl.labels(scores) == ["a:grbal", "b:grbal"]
    comps = {c.condition: c for c in cl.compare(scores, "a:grbal", "b:grbal")}
    assert comps["c1"].verdict == "win" and comps["c1"].seeds == 6
    assert comps["c1"].diff_mean == pytest.approx(-1.0, abs=0.1)
    assert comps["c2"].verdict in ("better", "worse")
    lines = list(cl.comparison_lines(list(comps.values())))
    assert "better in" in lines[-1] and "1 significant" in lines[-1]


def test_replicas_run_every_file_and_pair_by_file_and_seed() -> None:
    """A controller given as several model files (training seeds) runs each episode once
    per file under one label, and compares with another controller file by file, seed by
    seed: the units are (replica, seed)."""
    cases = cl.expand_cases(
        [("a.onnx,b.onnx,c.onnx", "dyn-eval", 0.05), ("m.onnx,n.onnx", "none", None)],
        ["straight"], ["x"], 2, 10,
    )  # fmt: skip
    mine = [c for c in cases if c.mode == "dyn-eval"]
    assert [(c.model, c.replica, c.seed) for c in mine] == [
        ("a.onnx", 0, 10), ("b.onnx", 1, 10), ("c.onnx", 2, 10),
        ("a.onnx", 0, 11), ("b.onnx", 1, 11), ("c.onnx", 2, 11),
    ]  # fmt: skip
    assert {cl._label(c) for c in mine} == {"a[3]:dyn-eval:0.05"}
    assert {cl._label(c) for c in cases if c.mode == "none"} == {"m[2]:none"}
    cost = {"a.onnx": 1.0, "b.onnx": 2.0, "c.onnx": 3.0, "m.onnx": 1.5, "n.onnx": 1.5}
    scores = [cl.EpisodeScore(c, cost[c.model] + 0.01 * c.seed, 0, 0, 0, 0, 0, 1) for c in cases]
    (summary_a, summary_m) = cl.summarise(scores)
    assert summary_a.episodes == 6 and summary_a.model == "a.onnx,b.onnx,c.onnx"
    assert summary_m.episodes == 4 and summary_m.label == "m[2]:none"
    assert summary_a.cost_mean == pytest.approx(2.105)
    (comp,) = cl.compare(scores, "a[3]:dyn-eval:0.05", "m[2]:none")
    assert comp.seeds == 4  # replicas 0 and 1 at seeds 10 and 11; c.onnx has no partner
    assert comp.diff_mean == pytest.approx(0.0)


def test_smoke_suite_runs() -> None:
    """`roach eval --suite smoke` runs its tasks and conditions, and a leg lost mid-run gets
    a recovery column."""
    r = _roach(
        "eval", "--suite", "smoke", "--model", GRBAL, "--episodes", "1", "--steps", "20", "--quiet"
    )
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("grbal")]
    assert len(rows) == 4
    assert sum("missing_leg=RF@1" in row for row in rows) == 2


def test_roach_eval_with_the_c_board_in_the_loop(tmp_path: Path) -> None:
    """`roach eval --board c`: a short episode with the C firmware serving the pty runs end
    to end, the JSON and every case say board c, and the robot follows the path as it does
    on the Python fake, along a trajectory of its own (the boards' PIDs differ)."""
    out = tmp_path / "eval.json"
    r = _roach(
        "eval", "--model", GRBAL, "--task", "straight", "--episodes", "1", "--steps", "20",
        "--board", "c", "--json", str(out), "--logs", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert any(line.startswith("grbal:dyn-eval ") for line in r.stdout.splitlines())
    doc = json.loads(out.read_text())
    assert doc["board"] == "c"
    (episode,) = doc["episodes"]
    assert episode["case"]["board"] == "c" and len(episode["costs"]) == 20
    assert episode["stopped_by"] is None and episode["mean_distance_m"] < 0.05
    assert len(list(tmp_path.glob("*-s0-c.mcap"))) == 1
    python = cl.run_episode(cl.EvalCase(GRBAL, "grbal", "straight", "", 0, steps=20))
    assert python.case.board == "python"
    assert abs(episode["progress_m"] - python.progress_m) < 0.1 * python.progress_m
    assert episode["xy"] != [list(p) for p in python.xy]


def test_unknown_board_is_refused_before_any_episode() -> None:
    """A board name the fake robot does not have: a ConfigError listing the valid ones."""
    with pytest.raises(ConfigError, match="--board 'rust' unknown; valid: python, c"):
        cl.expand_cases([(GRBAL, "grbal", None)], ["straight"], [""], 1, 0, board="rust")
