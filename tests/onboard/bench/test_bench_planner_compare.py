"""Planner comparisons on a tiny budget: settings parse, one row per setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from onboard.bench.planner_compare import (
    PlannerComparison,
    closed_loop_rows,
    format_closed_loop_row,
    format_quality_row,
    parse_setting,
    quality_header,
    quality_rows,
)
from onboard.bench.step_times import random_model
from robot_contract.errors import ConfigError


def test_settings_parse_to_planner_configs() -> None:
    """random:N is N candidates; cem:ITERSxN is ITERS iterations of N, a tenth elites."""
    r = parse_setting("random:300", horizon=4)
    assert (r.kind, r.n_candidates, r.horizon) == ("random", 300, 4)
    c = parse_setting("cem:3x150", horizon=5)
    assert (c.kind, c.cem_iters, c.n_candidates, c.cem_elites) == ("cem", 3, 150, 15)


@pytest.mark.parametrize("spec", ["random", "random:x", "cem:3", "cem:ax10", "grid:10"])
def test_bad_settings_are_one_line_config_errors(spec: str) -> None:
    """A setting that is neither form names itself and the valid forms."""
    with pytest.raises(ConfigError, match="random:N or cem:ITERSxN"):
        parse_setting(spec, horizon=5)


def test_quality_gives_one_row_per_setting_with_each_task() -> None:
    """Each setting yields a row with one (distance, progress) per task, in order."""
    comp = PlannerComparison(("random:40", "cem:2x20"), ("left", "straight"), 1, 5)
    rows = list(quality_rows(random_model((16, 16)), comp))
    assert [r.setting for r in rows] == ["random:40", "cem:2x20"]
    assert all(len(r.tasks) == 2 and r.gflop_per_plan > 0 for r in rows)
    assert format_quality_row(rows[0]).count("|") == quality_header(comp).count("|") == 3


@pytest.mark.timeout(120)
def test_closed_loop_runs_roach_run_against_the_fake(random_model_path: Path) -> None:
    """One lockstep episode through `roach sim` + `roach run` gives one result, no failure."""
    comp = PlannerComparison(("random:40",), ("straight",), episodes=1, steps=4)
    (row,) = closed_loop_rows(random_model_path, comp)
    assert row.failures == () and row.episodes.shape == (1, 3)
    assert format_closed_loop_row(row)[0].startswith("   random:40 |")
