"""Controller config: TOML loading, overrides and one-line errors for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from onboard.config import ControllerConfig, load_config, with_overrides
from robot_contract.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_shipped_default_toml_equals_the_dataclass_defaults() -> None:
    """configs/default.toml loads and lists exactly the built-in defaults."""
    cfg = load_config(REPO / "configs" / "default.toml")
    base = ControllerConfig()
    for section in ("loop", "link", "adaptation", "planner", "task"):
        assert getattr(cfg, section) == getattr(base, section), section


def test_shipped_default_toml_lists_every_key() -> None:
    """configs/default.toml names every key of every table (it is the reference example)."""
    import dataclasses
    import tomllib

    from onboard.config import SECTIONS

    raw = tomllib.loads((REPO / "configs" / "default.toml").read_text())
    optional = {("adaptation", "M"), ("adaptation", "inner_lr")}  # absent = the model's value
    for section, cls in SECTIONS.items():
        keys = {f.name for f in dataclasses.fields(cls)} | (
            {"name"} if section == "task" else set()
        )
        missing = {k for k in keys if (section, k) not in optional} - set(raw[section])
        assert not missing, (section, missing)


def test_values_are_read_and_ints_widen_to_floats(tmp_path: Path) -> None:
    """Keys set in the file override defaults; an integer is accepted for a float field."""
    cfg = load_config(
        _write(tmp_path, "[loop]\nrate_hz = 20\nsteps = 7\n[adaptation]\nmode = 'none'\nM = 8\n")
    )
    assert cfg.loop.rate_hz == 20.0 and isinstance(cfg.loop.rate_hz, float)
    assert cfg.loop.steps == 7 and cfg.adaptation.mode == "none" and cfg.adaptation.M == 8


@pytest.mark.parametrize(
    ("text", "must_contain"),
    [
        ("[loop]\nrate_hz = 10\nbogus = 1\n", ["unknown key 'bogus'", "[loop]", "rate_hz"]),
        ("[nope]\nx = 1\n", ["unknown table [nope]", "loop"]),
        ("[loop]\nsteps = 'many'\n", ["[loop] steps", "wrong type str", "expected int"]),
        ("[loop]\nsteps = 1.5\n", ["[loop] steps", "expected int"]),
        ("[loop]\ntelemetry_stale_s = true\n", ["telemetry_stale_s", "wrong type bool"]),
        ("[loop]\nrate_hz = 0.0\n", ["[loop] rate_hz", "out of range", "1.0 to 100.0", "Hz"]),
        ("[loop]\ncommand_timeout_ms = 5\n", ["command_timeout_ms", "20 to 10000", "ms"]),
        ("[loop]\nrate_hz = nan\n", ["rate_hz", "out of range"]),
        (
            "[loop]\ncommand_timeout_ms = 100\n",
            ["[loop] command_timeout_ms=100", "control period", "above 100 to 10000 ms"],
        ),
        (
            "[loop]\nrate_hz = 2\ncommand_timeout_ms = 400\n",
            ["[loop] command_timeout_ms=400", "control period", "above 500 to 10000 ms"],
        ),
        ("[adaptation]\nmode = 'maml'\n", ["[adaptation] mode", "grbal, dyn-eval, none"]),
        ("[task]\nname = 'spiral'\n", ["[task] name", "straight"]),
        ("[planner]\nhorizon = 1\n", ["[planner]", "horizon", ">= 2", "command_timing"]),
        ("[loop]\ncommand_timing = 'late'\n", ["[loop] command_timing", "pipelined, immediate"]),
        (
            "[planner]\nfix_first_action = false\n",
            [
                "[planner] fix_first_action has moved",
                '[loop] command_timing = "pipelined"',
                '"immediate" (for false)',
            ],
        ),
        ("[task]\nw_distance = -1.0\n", ["[task]", "w_distance", ">= 0"]),
        ("[loop\nrate_hz = 1\n", ["not valid TOML"]),
        ("loop = 3\n", ["must be a table"]),
    ],
)
def test_each_kind_of_mistake_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, must_contain: list[str]
) -> None:
    """Unknown key or table, wrong type, out of range, bad choice: one line naming the file."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    for part in must_contain:
        assert part in msg, (part, msg)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_overrides_are_validated_like_the_file() -> None:
    """Command-line overrides go through the same checks; None leaves a value alone."""
    cfg = with_overrides(ControllerConfig(), loop__steps=5, task__name=None)
    assert cfg.loop.steps == 5 and cfg.task.name == "straight"
    assert with_overrides(cfg, task__name="circle").task.name == "circle"
    with pytest.raises(ConfigError, match="command line: \\[loop\\] steps"):
        with_overrides(cfg, loop__steps=0)
    # The cross-check sees the file's timeout against an overridden rate.
    with pytest.raises(ConfigError, match="command_timeout_ms=300 must exceed"):
        with_overrides(cfg, loop__rate_hz=2.0)


def test_immediate_timing_plans_with_every_step_free(tmp_path: Path) -> None:
    """Immediate command timing fixes no step, so a one-step horizon is valid with it."""
    cfg = load_config(
        _write(tmp_path, "[loop]\ncommand_timing = 'immediate'\n[planner]\nhorizon = 1\n")
    )
    assert not cfg.loop.pipelined and cfg.planner.horizon == 1
    assert ControllerConfig().loop.pipelined


def test_configs_are_frozen() -> None:
    """Config dataclasses cannot be changed after validation."""
    cfg = ControllerConfig()
    with pytest.raises(AttributeError):
        cfg.loop.steps = 3  # type: ignore[misc]
