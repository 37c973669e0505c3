"""Oracles (MB trained on the test condition) and the suite report: a real, tiny oracle
trained and found again, run by `roach eval --oracle`, and the report's tables and plot."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from offboard_training import closed_loop as cl
from offboard_training import oracle, suite_report
from onboard.planner import PlannerConfig
from robot_contract.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
GRBAL, MB = str(REPO / "models" / "grbal.onnx"), str(REPO / "models" / "mb.onnx")


def test_the_oracle_learns_the_condition_after_its_switches() -> None:
    """A switch or a ramp is over for the oracle: it learns the settled condition."""
    assert oracle.steady_condition("missing_leg=RF@3") == "missing_leg=RF"
    assert oracle.steady_condition("gain_right=0.5@3,terrain=turf") == "terrain=turf,gain_right=0.5"
    assert oracle.steady_condition("friction=0.9~0.3@2:8") == "friction=0.3"
    a, b = oracle.oracle_name("payload_g=15"), oracle.oracle_name("payload_g=15.5")
    assert a != b and a.startswith("oracle-payload-g-15")


def test_perturbed_conditions_leave_out_the_training_terrains() -> None:
    conditions = cl.perturbed_conditions("paper")
    assert "terrain=carpet" not in conditions and "terrain=gravel" in conditions
    assert len(conditions) == len(cl.SUITES["paper"][1]) - 3


@pytest.fixture(scope="module")
def oracle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("oracles")
    oracle.train_oracles(["missing_leg=RF@1"], out, seed=3, minutes=0.4, train_minutes=0.1)
    return out


def test_an_oracle_is_trained_once_and_found_for_its_condition(oracle_dir: Path) -> None:
    """The index maps the settled condition to its model; a second call reuses it."""
    path = oracle.oracle_model(oracle_dir, "missing_leg=RF@1")
    assert path.is_file() and path == oracle.oracle_model(oracle_dir, "missing_leg=RF")
    assert not oracle.has_oracle(oracle_dir, "terrain=ice")
    again = oracle.train_oracles(["missing_leg=RF"], oracle_dir, 3, 0.4, train_minutes=0.1)
    assert again[0].wall_s == 0.0 and again[0].path == path
    with pytest.raises(ConfigError, match="no oracle model for condition 'terrain=ice'"):
        oracle.oracle_model(oracle_dir, "terrain=ice")
    with pytest.raises(ConfigError, match=r"no oracles\.json"):
        oracle.oracle_model(oracle_dir / "nowhere", "terrain=ice")


def test_eval_runs_the_oracle_and_the_report_normalises_to_it(
    oracle_dir: Path, tmp_path: Path
) -> None:
    """`roach eval --oracle` adds the oracle beside the controllers; the report has a cost
    column per controller, the share of MB's gap closed, recovery rows and a plot."""
    out = tmp_path / "eval.json"
    args = ["--model", GRBAL, "--model", MB, "--oracle", str(oracle_dir), "--episodes", "2"]
    args += ["--condition", "missing_leg=RF@1", "--condition", "", "--steps", "30", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "eval", *args, "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["command"].startswith("roach eval --model") and doc["code_version"]
    assert doc["planner"]["n_candidates"] == PlannerConfig().n_candidates
    scores = suite_report.load_scores(out)
    header = suite_report.header_lines(
        doc["command"], scores, doc["code_version"], planner=doc["planner"],
        command_timing=doc["command_timing"],
    )  # fmt: skip
    assert header[-1] == (
        f"Planner (every controller): `random`, {PlannerConfig().n_candidates} candidates x "
        f"{PlannerConfig().horizon} steps, pipelined command timing, planner seed 0."
    )
    assert cl.labels(scores) == ["grbal:dyn-eval", "mb:none", "oracle"]
    assert sum(1 for s in scores if cl._label(s.case) == "oracle") == 2  # only where it exists
    assert suite_report.plain_label(scores) == "mb:none"
    pairs = [("leg lost at 1 s", "missing_leg=RF@1"), ("nominal", "")]
    text = suite_report.suite_markdown(
        scores, pairs, ["Header."], "mb:none", tmp_path / "img", "img"
    )
    assert "| condition | `grbal:dyn-eval` | `mb:none` | `oracle` | gap closed by" in text
    per = sum(1 for s in scores if cl._label(s.case) == "grbal:dyn-eval")
    assert f"{len(scores)} episodes, {per} per controller: " in text
    assert "; the oracle's 2, one file per condition." in text
    row = next(line for line in text.splitlines() if line.startswith("| leg lost at 1 s ("))
    cells = [c.strip() for c in row.strip("|").split("|")]
    rows = suite_report.condition_rows(scores)
    mb, orc = rows[("mb:none", "missing_leg=RF@1")], rows[("oracle", "missing_leg=RF@1")]
    for label, cell in zip(["grbal:dyn-eval", "mb:none"], cells[4:], strict=True):
        it = rows[(label, "missing_leg=RF@1")].cost
        share = suite_report.gap_closed(mb.cost, it, orc.cost, math.hypot(mb.ci95, orc.ci95))
        assert cell == ("-" if share != share else f"{100 * share:.0f} %")  # nan: no gap
    assert "| `mb:none` | 2 |" in text  # two cases compared
    assert "`missing_leg=RF@1` | `grbal:dyn-eval` |" in text  # a recovery row
    assert (tmp_path / "img" / "closed-loop-trajectories.png").stat().st_size > 10_000


def test_gap_closed_is_the_share_of_mb_excess_over_the_oracle() -> None:
    assert suite_report.gap_closed(mb=3.0, it=1.5, oracle=1.0) == pytest.approx(0.75)
    assert suite_report.gap_closed(mb=3.0, it=4.0, oracle=1.0) == pytest.approx(-0.5)
    assert suite_report.gap_closed(mb=1.0, it=1.0, oracle=1.5) != suite_report.gap_closed(
        mb=1.0, it=1.0, oracle=1.5
    )  # nan: MB is not worse than the oracle, there is no gap to close
    assert math.isnan(suite_report.gap_closed(mb=1.02, it=0.5, oracle=1.0, margin=0.05))
    assert suite_report.gap_closed(mb=2.0, it=1.5, oracle=1.0, margin=math.nan) == 0.5
    assert suite_report.gap_closed(mb=1.2, it=1.1, oracle=1.0, margin=0.05) == pytest.approx(0.5)


def test_a_bad_eval_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="not a roach eval --json file"):
        suite_report.load_scores(bad)
    with pytest.raises(ConfigError, match="no such file"):
        suite_report.load_scores(tmp_path / "missing.json")
