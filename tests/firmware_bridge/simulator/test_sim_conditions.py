"""Condition strings and TOML files: parsing, switching times, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.sim.conditions import (
    CONDITION_KEYS,
    RAMP_STEP_S,
    TERRAINS,
    TRAINING_TERRAINS,
    Condition,
    load_condition_file,
    parse_condition,
    sample_training_condition,
)
from robot_contract.errors import ConfigError


def test_empty_string_is_nominal_carpet():
    """The empty condition string is the default Condition on carpet."""
    c = parse_condition("")
    assert c == Condition()
    assert c.terrain == "carpet" and c.surface() == TERRAINS["carpet"]


def test_pairs_parse_to_fields():
    """Each key=value pair sets its field; legs joined by '+' become a sorted tuple."""
    c = parse_condition("terrain=turf, missing_leg=RF+LM, payload_g=8,slope_deg=-5,friction=0.4")
    assert c.terrain == "turf"
    assert c.missing_leg == ("LM", "RF")
    assert c.payload_g == 8.0 and c.slope_deg == -5.0
    assert c.surface().friction == 0.4
    assert c.surface().softness == TERRAINS["turf"].softness


def test_switch_time_keeps_default_until_t():
    """A value ending in @T is the default before T and the given value from T on."""
    c = parse_condition("missing_leg=RF@4,payload_g=10@2.5,gain_left=0.5")
    assert c.at(0.0).missing_leg == () and c.at(3.9).missing_leg == ()
    assert c.at(4.0).missing_leg == ("RF",)
    assert c.at(2.0).payload_g == 0.0 and c.at(2.5).payload_g == 10.0
    assert c.at(0.0).gain_left == 0.5
    assert c.switch_times() == (2.5, 4.0)


def test_canonical_string_round_trips():
    """str(Condition) parses back to an equal Condition."""
    c = parse_condition("tow_g=20@1,terrain=ice,missing_leg=LR+RM,yaw_offset_deg=15")
    assert parse_condition(str(c)) == c
    assert str(Condition()) == ""


def test_every_key_is_documented():
    """Every Condition field but the switch and ramp lists has a CONDITION_KEYS entry with a
    doc line."""
    fields = set(Condition.__dataclass_fields__) - {"switch_s", "ramp_s"}
    assert fields == set(CONDITION_KEYS)
    assert all(spec.doc for spec in CONDITION_KEYS.values())


def test_docs_list_every_key_with_its_range():
    """docs/simulator.md has a table row for every condition key, showing its valid range."""
    doc = (Path(__file__).parents[3] / "docs" / "simulator.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    for key, spec in CONDITION_KEYS.items():
        row = next((r for r in rows if f"`{key}`" in r.split("|")[1]), None)
        assert row is not None, key
        if spec.kind == "float":
            assert f"{spec.lo:g}..{spec.hi:g}" in row, (key, row)
    for name in TERRAINS:
        assert f"| {name}" in doc


def test_training_sampler_stays_on_training_terrains():
    """sample_training_condition picks training terrains with jittered, in-range knobs."""
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        c = sample_training_condition(rng)
        seen.add(c.terrain)
        assert parse_condition(str(c)) == c  # within every documented range
    assert seen == set(TRAINING_TERRAINS)


def test_dynamics_variation_adds_the_families_training_may_see_and_no_other() -> None:
    """variation="dynamics" draws motor gains, payloads, slopes and a wider battery range
    on the training terrains; it never draws the families kept unseen (missing legs, pose
    miscalibration, tow); the terrain it draws is the one "terrain" draws from that seed."""
    rng = np.random.default_rng(1)
    first = sample_training_condition(np.random.default_rng(1), "dynamics")
    assert first.terrain == sample_training_condition(np.random.default_rng(1)).terrain
    conditions = [sample_training_condition(rng, "dynamics") for _ in range(300)]
    assert all(parse_condition(str(c)) == c for c in conditions)
    assert all(c.terrain in TRAINING_TERRAINS for c in conditions)
    assert all(not c.missing_leg and c.tow_g == 0 and c.yaw_offset_deg == 0 for c in conditions)
    assert all(c.pos_offset_mm == 0 and not c.switch_s for c in conditions)
    share = {
        "gains": np.mean([c.gain_left != 1.0 for c in conditions]),
        "payload": np.mean([c.payload_g > 0 for c in conditions]),
        "slope": np.mean([c.slope_deg != 0 for c in conditions]),
    }
    assert 0.4 < share["gains"] < 0.6 and 0.25 < share["payload"] < 0.42
    assert 0.25 < share["slope"] < 0.42
    assert min(c.battery_v for c in conditions) < 3.5
    with pytest.raises(ConfigError, match="valid: terrain, dynamics"):
        sample_training_condition(rng, "everything")


@pytest.mark.parametrize(
    ("text", "key", "valid"),
    [
        ("foo=1", "'foo'", "valid keys: terrain"),  # unknown key
        ("payload_g=100", "'payload_g'", "0..30 g"),  # out of range
        ("slope_deg=-30", "'slope_deg'", "-20..20 deg"),
        ("payload_g=heavy", "'payload_g'", "0..30 g"),  # not a number
        ("terrain", "'terrain'", "key=value"),  # malformed pair
        ("payload_g=1,,tow_g=2", "''", "key=value"),
        ("missing_leg=RF@soon", "'missing_leg'", "@T with T in 0..3600 s"),  # bad @T
        ("payload_g=5@-1", "'payload_g'", "@T with T in"),
        ("terrain=mud", "'terrain'", "carpet, styrofoam, turf, gravel, ice"),  # bad terrain
        ("missing_leg=RF+XX", "'missing_leg'", "LF LM LR RF RM RR"),  # bad leg
        ("tow_g=1,tow_g=2", "'tow_g'", "twice"),
    ],
)
def test_bad_strings_name_the_key_and_what_is_valid(text, key, valid):
    """Each kind of bad condition string raises a one-line ConfigError naming key and range."""
    with pytest.raises(ConfigError) as err:
        parse_condition(text)
    message = str(err.value)
    assert "\n" not in message
    assert key in message and valid in message


def test_toml_file_parses_like_the_string(tmp_path: Path):
    """A TOML file with numbers, @T strings and a leg list equals the same condition string."""
    path = tmp_path / "cond.toml"
    path.write_text('terrain = "turf"\npayload_g = 8\nmissing_leg = ["RF", "LM"]\ntow_g = "20@3"\n')
    assert load_condition_file(path) == parse_condition(
        "terrain=turf,payload_g=8,missing_leg=LM+RF,tow_g=20@3"
    )


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ("payload_g = 8\nwings = 2\n", "'wings'"),  # unknown key
        ("payload_g = 80\n", "0..30 g"),  # out of range
        ('missing_leg = "RF@later"\n', "@T with T in"),  # bad @T
        ('terrain = "lava"\n', "carpet, styrofoam"),  # bad terrain
        ("payload_g = [1, 2]\n", "'payload_g'"),  # wrong value type
        ("payload_g = = 8\n", "invalid TOML"),  # not TOML
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, body: str, expect: str):
    """Bad TOML condition files raise a one-line ConfigError naming the file and the problem."""
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_condition_file(path)
    assert "\n" not in str(err.value)
    assert expect in str(err.value) and "bad.toml" in str(err.value)


def test_missing_file_is_a_config_error(tmp_path: Path):
    """A condition file that does not exist is a ConfigError, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_condition_file(tmp_path / "nope.toml")


def test_cli_bad_condition_exits_2_with_one_line(tmp_path: Path):
    """`roach sim-check` with a bad condition string or file exits 2 with one stderr line."""
    bad = tmp_path / "bad.toml"
    bad.write_text("slope_deg = 45\n")
    for args in (["--condition", "payload_g=99"], ["--condition-file", str(bad)]):
        proc = subprocess.run(
            [sys.executable, "-m", "tools.cli", "sim-check", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "sim-check: error:" in lines[0]
        assert ("payload_g" in lines[0]) or ("slope_deg" in lines[0])


def test_gradual_change_interpolates_between_its_times():
    """``A~B@T0:T1``: A until T0, linear to B at T1, B after; the simulation is updated
    every RAMP_STEP_S over the ramp; the string round-trips."""
    c = parse_condition("friction=0.9~0.3@2:8,missing_leg=RF@4")
    assert c.friction == 0.3 and c.onset_s() == 2.0
    assert c.at(1.0).friction == 0.9 and c.at(5.0).friction == pytest.approx(0.6)
    assert c.at(8.0).friction == 0.3 and c.at(5.0).missing_leg == ("RF",)
    times = c.switch_times()
    assert times[0] == 2.0 and times[-1] == 8.0 and 4.0 in times and len(times) == 121
    assert parse_condition(str(c)) == c
    assert parse_condition("").onset_s() is None


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("friction=0.9~0.3@8:2", "0 <= T0 < T1"),
        ("friction=0.9~0.3", "A~B@T0:T1"),
        ("friction=0.9@2:8", "A~B@T0:T1"),
        ("terrain=carpet~ice@1:2", "only numeric keys"),
        ("friction=0.9~5@1:2", "out of range"),
        ("friction=x~0.3@1:2", "not a number"),
    ],
)
def test_bad_gradual_changes_are_one_line(text, expect):
    """Each malformed gradual change is a ConfigError naming the key and the valid form."""
    with pytest.raises(ConfigError) as info:
        parse_condition(text)
    assert expect in str(info.value) and "\n" not in str(info.value)


def test_simulator_follows_a_gradual_change():
    """The ground's friction in the MuJoCo model follows the ramp as simulated time passes."""
    from firmware_bridge.sim.robot import SimRobot

    sim = SimRobot("friction=0.9~0.3@0.2:0.6", seed=0)
    ground = sim._grounds[1]
    sim.step(0.1)
    assert sim.model.geom_friction[ground][0] == pytest.approx(0.9)
    sim.step(0.3)  # t = 0.4 s, half way; the last update was at most one ramp step ago
    assert 0.6 <= sim.model.geom_friction[ground][0] <= 0.6 + 0.6 / 0.4 * RAMP_STEP_S + 1e-9
    sim.step(0.4)
    assert sim.model.geom_friction[ground][0] == pytest.approx(0.3)
