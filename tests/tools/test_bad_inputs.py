"""The bad-input catalogue of docs/reliability.md, row by row: every file and argument a
user hands over, when wrong, is one line on stderr naming it, exit code 2, no traceback.
Then the command line itself fuzzed with Hypothesis over its argument grammar.

Each row runs ``roach`` in this process (``tools.cli.main``), so the 70-odd rows cost
seconds, not a subprocess each; the rows that need a serial port get a real pty."""

# ruff: noqa: E501  (the catalogue rows read as one line each, like the table in the docs)

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from cli_helpers import REPO, SHIPPED_GRBAL, write_random_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robot_contract.model_file import stamp_model, with_checksum
from tools.cli import main

G = str(SHIPPED_GRBAL)


class Files:
    """The bad files of the catalogue, written once per module into ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        master, slave = os.openpty()  # a real pty: a port that opens
        self._fds = (master, slave)
        self.pty = os.ttyname(slave)

    def path(self, name: str, content: bytes | str | None = None) -> str:
        p = self.root / name
        if isinstance(content, str):
            p.write_text(content)
        elif content is not None:
            p.write_bytes(content)
        return str(p)

    def toml(self, name: str, text: str) -> str:
        return self.path(name + ".toml", text)

    def model(self, name: str, **meta: str | None) -> str:
        return str(write_random_model(self.root / f"{name}.onnx", metadata=meta))

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


def _flipped(f: Files) -> str:
    data = bytearray(SHIPPED_GRBAL.read_bytes())
    data[len(data) // 2] ^= 0x04
    return f.path("flipped.onnx", bytes(data))


def _stale(f: Files) -> str:
    proto = onnx.load(G)
    init = next(t for t in proto.graph.initializer if t.name == "layers.0.bias")
    arr = onnx.numpy_helper.to_array(init).copy() + 0.3
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    return f.path("stale.onnx", with_checksum(proto))


def _absurd(f: Files) -> str:
    proto = onnx.load(f.model("absurd-src"))
    init = next(t for t in proto.graph.initializer if t.name == "norm.delta_mean")
    arr = onnx.numpy_helper.to_array(init).copy()
    arr[3] = 500.0  # vx changes by 500 m/s per step
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    return f.path("absurd.onnx", stamp_model(proto))


def _run(f: Files, *extra: str, model: str = G) -> list[str]:
    return ["run", "--port", f.pty, "--model", model, "--lockstep", *extra]


def _cfg(f: Files, name: str, text: str) -> list[str]:
    return _run(f, "--config", f.toml(name, text))


Row = tuple[str, str, Callable[[Files], list[str]], str]
"""(id, what is handed over, argv builder, a fragment the one-line error must contain)."""

ROWS: list[Row] = [
    # -- model files (roach run --model) ---------------------------------------------------
    ("model-missing", "model path that does not exist", lambda f: _run(f, model=f.path("none.onnx")), "no such file"),
    ("model-directory", "model path that is a directory", lambda f: _run(f, model=str(f.root)), "is a directory"),
    ("model-empty", "empty model file", lambda f: _run(f, model=f.path("empty.onnx", b"")), "empty graph"),
    ("model-garbage", "model file of random bytes", lambda f: _run(f, model=f.path("g.onnx", os.urandom(4096))), "model file"),
    ("model-truncated", "model file cut in half", lambda f: _run(f, model=f.path("t.onnx", SHIPPED_GRBAL.read_bytes()[:50_000])), "model file"),
    ("model-bit-flip", "model file with one bit flipped", lambda f: _run(f, model=_flipped(f)), "SHA-256"),
    ("model-stale-probes", "weights changed, checksum rewritten", lambda f: _run(f, model=_stale(f)), "recorded probe states"),
    ("model-absurd", "model predicting impossible changes", lambda f: _run(f, model=_absurd(f)), "implausible prediction"),
    ("model-missing-key", "model without roach.M", lambda f: _run(f, model=f.model("nokey", **{"roach.M": None})), "missing metadata"),
    ("model-bad-int", "roach.M not an integer", lambda f: _run(f, model=f.model("badm", **{"roach.M": "many"})), "not an integer"),
    ("model-huge-window", "roach.M = 10^8", lambda f: _run(f, model=f.model("hugem", **{"roach.M": "100000000"})), "roach.M"),
    ("model-period", "model trained at another rate", lambda f: _run(f, model=f.model("per", **{"roach.control_period_s": "0.05"})), "control period"),
    ("model-bounds", "model with other action bounds", lambda f: _run(f, model=f.model("bnd", **{"roach.action_low": "1.0,1.0"})), "action bounds"),
    ("model-layout", "model with another state layout", lambda f: _run(f, model=f.model("lay", **{"roach.state_names": "a,b"})), "state layout"),
    ("model-version", "model of an unknown format version", lambda f: _run(f, model=f.model("ver", **{"roach.format_version": "9"})), "supported"),
    ("model-activation", "model with another activation", lambda f: _run(f, model=f.model("act", **{"roach.activation": "tanh"})), "only relu"),
    ("model-json", "roach.train_config not JSON", lambda f: _run(f, model=f.model("js", **{"roach.train_config": "{"})), "not JSON"),
    # -- config files (roach run --config) --------------------------------------------------
    ("config-missing", "config path that does not exist", lambda f: _run(f, "--config", f.path("none.toml")), "config file not found"),
    ("config-directory", "config path that is a directory", lambda f: _run(f, "--config", str(f.root)), "cannot read config file"),
    ("config-binary", "config file that is not UTF-8", lambda f: _run(f, "--config", f.path("bin.toml", b"\xff\xfe\x00")), "cannot read config file"),
    ("config-not-toml", "config file that is not TOML", lambda f: _cfg(f, "nt", "[loop\nrate_hz = 1"), "not valid TOML"),
    ("config-unknown-table", "unknown table", lambda f: _cfg(f, "ut", "[motors]\nx = 1\n"), "unknown table"),
    ("config-not-a-table", "a table given as a value", lambda f: _cfg(f, "nat", "loop = 3\n"), "must be a table"),
    ("config-unknown-key", "unknown key", lambda f: _cfg(f, "uk", "[loop]\nspeed = 1\n"), "unknown key"),
    ("config-wrong-type", "text for a number", lambda f: _cfg(f, "wt", "[loop]\nsteps = 'ten'\n"), "wrong type"),
    ("config-bool-number", "a bool for a number", lambda f: _cfg(f, "bn", "[loop]\nrate_hz = true\n"), "wrong type"),
    ("config-rate-range", "control rate out of range", lambda f: _cfg(f, "rr", "[loop]\nrate_hz = 500.0\n"), "out of range"),
    ("config-nan", "NaN for a time", lambda f: _cfg(f, "nan", "[loop]\ntelemetry_stale_s = nan\n"), "out of range"),
    ("config-timeout-period", "board timeout shorter than the period", lambda f: _cfg(f, "tp", "[loop]\ncommand_timeout_ms = 50\n"), "must exceed"),
    ("config-bounds-order", "action bounds inverted", lambda f: _cfg(f, "bo", "[loop]\naction_low_rev_s = 9.0\naction_high_rev_s = 2.0\n"), "must be below"),
    ("config-moved-key", "a key of an older config", lambda f: _cfg(f, "mk", "[planner]\nfix_first_action = true\n"), "has moved"),
    ("config-mode", "unknown adaptation mode", lambda f: _cfg(f, "md", "[adaptation]\nmode = 'maml'\n"), "valid"),
    ("config-window-zero", "adaptation window 0", lambda f: _cfg(f, "w0", "[adaptation]\nM = 0\n"), "out of range"),
    ("config-inner-lr", "negative step size", lambda f: _cfg(f, "lr", "[adaptation]\ninner_lr = -1.0\n"), "out of range"),
    ("config-planner-kind", "unknown planner", lambda f: _cfg(f, "pk", "[planner]\nkind = 'mppi'\n"), "not valid"),
    ("config-candidates-zero", "0 candidates", lambda f: _cfg(f, "c0", "[planner]\nn_candidates = 0\n"), "n_candidates"),
    ("config-candidates-huge", "2,000,000 candidates", lambda f: _cfg(f, "ch", "[planner]\nn_candidates = 2000000\n"), "too large"),
    ("config-memory", "buffers over the memory budget", lambda f: _cfg(f, "mem", "[planner]\nn_candidates = 1000000\nhorizon = 100\n"), "max_memory_mb"),
    ("config-horizon-one", "horizon 1 with pipelined commands", lambda f: _cfg(f, "h1", "[planner]\nhorizon = 1\n"), "horizon"),
    ("config-horizon-huge", "horizon 10,000", lambda f: _cfg(f, "hh", "[planner]\nhorizon = 10000\n"), "too large"),
    ("config-cem-iters", "10,000 CEM iterations", lambda f: _cfg(f, "ci", "[planner]\nkind = 'cem'\ncem_iters = 10000\n"), "too large"),
    ("config-planner-seed", "negative planner seed", lambda f: _cfg(f, "ps", "[planner]\nseed = -1\n"), "seed"),
    ("config-task", "unknown task", lambda f: _cfg(f, "tk", "[task]\nname = 'moon'\n"), "valid"),
    ("config-task-scale-inf", "infinite task scale", lambda f: _cfg(f, "ts", "[task]\nscale_m = inf\n"), "scale_m"),
    ("config-task-scale-neg", "negative task scale", lambda f: _cfg(f, "tn", "[task]\nscale_m = -2.0\n"), "scale_m"),
    ("config-battery-order", "battery range inverted", lambda f: _cfg(f, "bat", "[plausibility]\nbattery_min_v = 5.0\nbattery_max_v = 4.0\n"), "battery_min_v"),
    ("config-tilt", "tilt bound out of range", lambda f: _cfg(f, "tilt", "[plausibility]\nmax_tilt_deg = 500\n"), "out of range"),
    ("config-budget", "step budget over the period", lambda f: _cfg(f, "bud", "[resources]\nstep_budget_fraction = 2.0\n"), "out of range"),
    ("config-link-health", "negative link bound", lambda f: _cfg(f, "lh", "[link_health]\nmax_corrupt = -1\n"), "out of range"),
    # -- roach run options --------------------------------------------------------------------
    ("run-no-port", "no port given", lambda f: ["run", "--model", G], "no serial port"),
    ("run-port-missing", "port that does not exist", lambda f: ["run", "--port", "/dev/does-not-exist", "--model", G], "does not exist"),
    ("run-task", "unknown --task", lambda f: _run(f, "--task", "moon"), "valid"),
    ("run-mode", "unknown --mode", lambda f: _run(f, "--mode", "maml"), "valid"),
    ("run-steps-zero", "--steps 0", lambda f: _run(f, "--steps", "0"), "out of range"),
    ("run-steps-text", "--steps ten", lambda f: _run(f, "--steps", "ten"), "not an integer"),
    ("run-log-directory", "--log that is a directory", lambda f: _run(f, "--log", str(f.root)), "cannot write the log"),
    ("run-log-unwritable", "--log on a read-only file system", lambda f: _run(f, "--log", "/proc/roach.mcap"), "cannot write the log"),
    # -- roach sim / sim-check --------------------------------------------------------------
    ("sim-seed", "negative --seed", lambda f: ["sim", "--seed", "-1"], "out of range"),
    ("sim-condition-key", "unknown condition key", lambda f: ["sim", "--condition", "gravity=2"], "gravity"),
    ("sim-condition-range", "condition value out of range", lambda f: ["sim", "--condition", "slope_deg=90"], "slope_deg"),
    ("sim-condition-file", "condition file that does not exist", lambda f: ["sim", "--condition-file", f.path("none-cond.toml")], "none-cond.toml"),
    ("sim-faults-range", "fault probability 2", lambda f: ["sim", "--faults", "drop=2"], "drop"),
    ("sim-faults-key", "unknown fault", lambda f: ["sim", "--faults", "melt=1"], "valid keys"),
    ("sim-link", "--link over a regular file", lambda f: ["sim", "--link", f.path("regular", "x")], "not a symlink"),
    ("sim-check-seconds", "--seconds 0", lambda f: ["sim-check", "--seconds", "0"], "out of range"),
    ("sim-check-nan", "--seconds nan", lambda f: ["sim-check", "--seconds", "nan"], "finite"),
    # -- roach replay -------------------------------------------------------------------------
    ("replay-missing", "log that does not exist", lambda f: ["replay", f.path("none.mcap")], "no such file"),
    ("replay-directory", "log path that is a directory", lambda f: ["replay", str(f.root)], "is a directory"),
    ("replay-empty", "empty log", lambda f: ["replay", f.path("empty.mcap", b"")], "empty file"),
    ("replay-not-mcap", "a file that is not MCAP", lambda f: ["replay", G], "not an MCAP log"),
    ("replay-window-zero", "--M 0", lambda f: ["replay", G, "--M", "0"], "out of range"),
    # -- roach hil ----------------------------------------------------------------------------
    ("hil-rate-nan", "--rate-hz nan", lambda f: ["hil", "--port", f.pty, "--rate-hz", "nan"], "finite"),
    ("hil-rate-zero", "--rate-hz 0", lambda f: ["hil", "--port", f.pty, "--rate-hz", "0"], "out of range"),
    ("hil-leg", "--leg-rev-s 50", lambda f: ["hil", "--port", f.pty, "--leg-rev-s", "50"], "out of range"),
    ("hil-timeout", "--timeout-ms 0", lambda f: ["hil", "--port", f.pty, "--timeout-ms", "0"], "out of range"),
    ("hil-port", "port that does not exist", lambda f: ["hil", "--port", "/dev/does-not-exist"], "does-not-exist"),
    # -- roach eval / soak / demo / collect / train / export ------------------------------------
    ("eval-seed", "negative --seed", lambda f: ["eval", "--model", G, "--seed", "-3"], "out of range"),
    ("eval-episodes", "--episodes 0", lambda f: ["eval", "--model", G, "--episodes", "0"], "out of range"),
    ("eval-jobs", "--jobs 0", lambda f: ["eval", "--model", G, "--jobs", "0"], "out of range"),
    ("eval-model", "model that does not exist", lambda f: ["eval", "--model", f.path("none2.onnx")], "none2.onnx"),
    ("soak-hours", "--hours 0", lambda f: ["soak", "--hours", "0"], "out of range"),
    ("soak-hours-inf", "--hours inf", lambda f: ["soak", "--hours", "inf"], "finite"),
    ("demo-seed", "negative --seed", lambda f: ["demo", "--seed", "-1"], "out of range"),
    ("collect-seed", "negative --seed", lambda f: ["collect", "--out", str(f.root / "d"), "--seed", "-5"], "out of range"),
    ("collect-episodes", "--episodes 0", lambda f: ["collect", "--out", str(f.root / "d"), "--episodes", "0"], "out of range"),
    ("train-seed", "negative --seed", lambda f: ["train", "--algo", "mb", "--out", str(f.root / "r"), "--seed", "-1"], "out of range"),
    ("export-run", "run folder that does not exist", lambda f: ["export", str(f.root / "norun"), "--out", str(f.root / "x.onnx")], "model.pt"),
    ("cli-unknown-command", "unknown subcommand", lambda f: ["fly"], "unknown command"),
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    f = Files(tmp_path_factory.mktemp("bad"))
    yield f  # type: ignore[misc]
    f.close()


def _roach(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_exit_2(
    row: Row, files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalogue row: exit code 2, one line on stderr with the fragment, no traceback."""
    _id, _what, argv, fragment = row
    code, err = _roach(argv(files), capsys)
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning:" not in ln]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error" in lines[0]
    assert fragment in lines[0], lines[0]


def test_catalogue_in_the_docs_is_the_tested_one() -> None:
    """docs/reliability.md lists exactly these rows (at least 60), each tested above."""
    text = (REPO / "docs" / "reliability.md").read_text()
    section = text.split("## Bad-input catalogue", 1)[1].split("\n## ", 1)[0]
    ids = re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE)
    assert ids == [r[0] for r in ROWS]
    assert len(ids) >= 60


# -- Hypothesis over the argument grammar --------------------------------------------------

_HOSTILE = st.sampled_from(
    ["", "-1", "0", "nan", "inf", "-inf", "1e400", "NaN", "x", "--", "-", "\x00", "é", "9" * 40,
     "/dev/does-not-exist", "/", "/proc/x", "a=b", "=", ",", "@", "drop=2", "slope_deg=99"]
)  # fmt: skip
_OPTIONS: dict[str, list[str]] = {
    "run": ["--port", "--model", "--config", "--task", "--steps", "--mode", "--log"],
    "replay": ["--model", "--mode", "--M"],
    "hil": ["--port", "--baud", "--rate-hz", "--leg-rev-s", "--timeout-ms"],
    "sim-check": ["--condition", "--seconds", "--left", "--right", "--seed"],
    "soak": ["--hours", "--model", "--config", "--seed", "--log"],
    "eval": ["--model", "--task", "--condition", "--episodes", "--seed", "--steps", "--jobs"],
}
_MUST_FAIL = {
    # an option whose hostile value keeps each command from starting real work
    "run": ["--port", "/dev/does-not-exist"],
    "replay": ["/dev/does-not-exist.mcap"],
    "hil": ["--port", "/dev/does-not-exist"],
    "sim-check": ["--seconds", "-1"],
    "soak": ["--hours", "-1"],
    "eval": ["--model", "/dev/does-not-exist.onnx"],
}


@st.composite
def _argv(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(_OPTIONS)))
    pairs = draw(st.lists(st.tuples(st.sampled_from(_OPTIONS[command]), _HOSTILE), max_size=5))
    args = [command]
    for opt, value in pairs:
        args += [opt, value]
    return args + _MUST_FAIL[command]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=_argv())
def test_fuzzed_command_lines_fail_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Any combination of hostile values for the options of run, replay, hil, sim-check,
    soak and eval: exit code 2 and one line, never a traceback."""
    code, err = _roach(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning:" not in ln]
    assert code == 2, (argv, err)
    assert len(lines) == 1 and "Traceback" not in err, (argv, err)


def test_a_nul_byte_in_an_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A path with a NUL byte (only an in-process caller can pass one) is a one-line
    error, exit 2, before any file is opened."""
    argv = ["run", "--model", "", "--config", "\x00", "--port", "/dev/does-not-exist"]
    code, err = _roach(argv, capsys)
    assert code == 2
    assert err.strip() == "roach run: error: argument 4 contains a NUL byte"
