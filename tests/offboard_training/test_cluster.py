"""Scale-out on a real Ray head (``ray start --head`` on 127.0.0.1, 2 CPUs, one for the
whole module): `roach collect`, `roach eval` and `roach sweep` through ``--cluster`` give
what the local pool (or the in-process sweep) gives, bit for bit; a worker killed in the
middle of an episode loses no episode and counts none twice."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_head import REPO, RayHead, start_head, title

from offboard_training.cluster import check_address
from robot_contract.errors import ConfigError

GRBAL, MB = str(REPO / "models" / "grbal.onnx"), str(REPO / "models" / "mb.onnx")
MPC_COLLECT = ["--episodes", "4", "--seed", "5", "--policy", "mpc", "--model", GRBAL]
MPC_COLLECT += ["--candidates", "100", "--no-progress"]
EVAL = ["--model", GRBAL, "--model", f"{MB}:none", "--task", "left"]
EVAL += ["--condition", "gain_left=0.5@1", "--episodes", "2", "--steps", "20", "--quiet"]
TIMING = ("step_p50_ms", "step_p99_ms", "step_max_ms")
"""Wall-clock figures of an episode: measured, so never equal between two runs."""


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """One real Ray head on 127.0.0.1 with 2 CPUs for this module, stopped after it."""
    head = start_head(cpus=2)
    try:
        yield head
    finally:
        head.stop()
        assert not head.processes(), "the test cluster left processes running"


def _roach(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MPC collection on the local pool (2 processes), the reference."""
    out = tmp_path_factory.mktemp("local") / "data"
    r = _roach("collect", "--out", str(out), *MPC_COLLECT, "--workers", "2")
    assert r.returncode == 0, r.stderr
    return out


def _assert_same_dataset(a: Path, b: Path) -> None:
    files = sorted(p.name for p in a.glob("*.npz"))
    assert files == sorted(p.name for p in b.glob("*.npz")) and len(files) == 4
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ea = json.loads((a / "manifest.json").read_text())["episodes"]
    eb = json.loads((b / "manifest.json").read_text())["episodes"]
    assert ea == eb and [e["file"] for e in eb] == files


@pytest.mark.timeout(600)
def test_collect_on_cluster_equals_local_pool(
    ray_head: RayHead, local_dataset: Path, tmp_path: Path
) -> None:
    """Same seed: the episode files through --cluster are byte-identical to the local
    pool's, and so are the manifest's episode entries."""
    out = tmp_path / "data"
    r = ray_head.roach("collect", "--out", str(out), *MPC_COLLECT, "--cluster", ray_head.address)
    assert r.returncode == 0, r.stderr
    _assert_same_dataset(local_dataset, out)
    info = json.loads((out / "manifest.json").read_text())["info"]
    assert info["cluster"] == ray_head.address


@pytest.mark.timeout(600)
def test_killed_worker_loses_and_duplicates_no_episode(
    ray_head: RayHead, local_dataset: Path, tmp_path: Path
) -> None:
    """SIGKILL to a worker in the middle of an episode: Ray reruns that episode elsewhere;
    the dataset still has each of the 4 episodes once, byte-identical to the local pool's."""
    out = tmp_path / "data"
    proc = ray_head.popen("collect", "--out", str(out), *MPC_COLLECT, "--cluster", ray_head.address)
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        assert proc.poll() is None, "the collection ended before a worker could be killed"
        busy = [p for p in ray_head.processes() if title(p).startswith("ray::_cluster_episode")]
        if busy:
            victim = busy[0]
            os.kill(victim, signal.SIGKILL)
        else:
            time.sleep(0.05)
    assert victim is not None, "no worker was seen running an episode"
    stdout, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stderr
    assert "wrote 4 episodes" in stdout
    assert not title(victim).startswith("ray::_cluster_episode")
    _assert_same_dataset(local_dataset, out)


def _episodes_without_timing(path: Path) -> list[dict[str, Any]]:
    episodes = json.loads(path.read_text())["episodes"]
    for e in episodes:
        for key in TIMING:
            e.pop(key)
        e["events"].pop("overrun", None)  # a late tick: wall-clock too
    return episodes


@pytest.mark.timeout(600)
def test_eval_on_cluster_equals_local_pool(ray_head: RayHead, tmp_path: Path) -> None:
    """Two controllers under a mid-run failure (with its intact twins): the table printed
    through --cluster is the local pool's, and so is every episode (its wall-clock step
    times aside)."""
    local, remote = tmp_path / "local.json", tmp_path / "cluster.json"
    a = _roach("eval", *EVAL, "--jobs", "2", "--json", str(local))
    assert a.returncode == 0, a.stderr
    b = ray_head.roach("eval", *EVAL, "--cluster", ray_head.address, "--json", str(remote))
    assert b.returncode == 0, b.stderr
    table_a = [line for line in a.stdout.splitlines() if not line.startswith("json:")]
    table_b = [line for line in b.stdout.splitlines() if not line.startswith("json:")]
    assert table_a == table_b and len(table_a) >= 5
    ea, eb = _episodes_without_timing(local), _episodes_without_timing(remote)
    assert len(ea) == 4 and ea == eb
    assert all(e["intact_cost"] is not None for e in eb)


@pytest.mark.timeout(600)
def test_tune_sweep_writes_its_table_and_best_config(
    ray_head: RayHead, synthetic_dataset: Path, tmp_path: Path
) -> None:
    """2 sizes x 2 inner steps as Ray Tune trials: four rows in grid order, the table, and
    a best.toml that `roach train --config` retrains to the same validation error. (The
    rows equal the sweep without Ray: test_killed_trial_is_retried_not_dropped.)"""
    grid = ["--data", str(synthetic_dataset), "--hidden", "16,16", "--hidden", "32,32"]
    grid += ["--inner-lr", "0.1", "--inner-lr", "0.3", "--M", "8", "--K", "4"]
    grid += ["--epochs", "3", "--steps-per-epoch", "5", "--patience", "3"]
    tune_out = tmp_path / "tune"
    r = ray_head.roach("sweep", *grid, "--out", str(tune_out), "--cluster", ray_head.address)
    assert r.returncode == 0, r.stderr
    assert "Trial status" in r.stdout + r.stderr  # Tune's progress table
    rows = json.loads((tune_out / "sweep.json").read_text())
    assert [r["name"] for r in rows] == [
        f"h{h}_M8_K4_lr{lr}_s0" for h in ("16x16", "32x32") for lr in ("0.1", "0.3")
    ]
    for row in rows:
        assert math.isfinite(row["val_after"]) and row["epochs_run"] == 3
    table = (tune_out / "sweep.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + 4
    best = min(rows, key=lambda r: r["best_val"])
    assert f"**{best['name']}**" in table
    run = tmp_path / "best-run"
    t = _roach("train", "--config", str(tune_out / "best.toml"), "--data", str(synthetic_dataset),
               "--out", str(run), "--no-progress")  # fmt: skip
    assert t.returncode == 0, t.stderr
    assert json.loads((run / "summary.json").read_text())["best_val"] == best["best_val"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_trial_is_retried_not_dropped(
    ray_head: RayHead, synthetic_dataset: Path, tmp_path: Path
) -> None:
    """SIGKILL to a Tune trial's process: Tune restarts that trial; the sweep still has
    all four rows, each equal to the sweep run here without Ray."""
    grid = ["--data", str(synthetic_dataset), "--hidden", "16,16", "--hidden", "32,32"]
    grid += ["--inner-lr", "0.1", "--inner-lr", "0.3", "--M", "8", "--K", "4"]
    grid += ["--epochs", "6", "--steps-per-epoch", "40", "--patience", "6"]
    proc = ray_head.popen("sweep", *grid, "--out", str(tmp_path / "tune"),
                          "--cluster", ray_head.address)  # fmt: skip
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        trials = [p for p in ray_head.processes() if title(p).startswith("ray::ImplicitFunc")]
        if trials:
            time.sleep(2.0)  # into its training
            victim = trials[0]
            os.kill(victim, signal.SIGKILL)
        else:
            time.sleep(0.05)
    assert victim is not None, "no trial process was seen"
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "Worker PID: " + str(victim) in stdout + stderr  # Ray saw it die
    here = _roach("sweep", *grid, "--out", str(tmp_path / "here"), "--no-progress")
    assert here.returncode == 0, here.stderr
    rows = json.loads((tmp_path / "tune" / "sweep.json").read_text())
    ref = json.loads((tmp_path / "here" / "sweep.json").read_text())
    assert len(rows) == 4
    assert [{**r, "wall_s": 0} for r in rows] == [{**r, "wall_s": 0} for r in ref]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oracles_train_as_cluster_tasks(ray_head: RayHead, tmp_path: Path) -> None:
    """Two conditions that settle differently: one task each, both indexed and loadable;
    a condition settling like another reuses its oracle."""
    code = (
        "import sys; from offboard_training.oracle import train_oracles; "
        "r = train_oracles(['missing_leg=RF@1', 'gain_left=0.5', 'missing_leg=RF'], "
        f"{str(tmp_path)!r}, seed=3, minutes=0.4, train_minutes=0.05, "
        f"cluster={ray_head.address!r}); "
        "print([x.path.name for x in r])"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ray_head.env,
                       capture_output=True, text=True, timeout=800)  # fmt: skip
    assert r.returncode == 0, r.stderr
    from offboard_training.oracle import oracle_model
    from onboard.model import load_model

    index = json.loads((tmp_path / "oracles.json").read_text())
    assert sorted(index) == ["gain_left=0.5", "missing_leg=RF"]
    for condition in ("missing_leg=RF@1", "gain_left=0.5"):
        load_model(oracle_model(tmp_path, condition))
    names = eval(r.stdout.strip().splitlines()[-1])
    assert names[0] == names[2] != names[1]


# -- without a cluster ---------------------------------------------------------------------


@pytest.mark.parametrize("address", ["local", "auto", "10.0.0.5:6379", "ray://head:10001"])
def test_addresses_accepted(address: str) -> None:
    """The four forms of docs/cluster.md pass the check (nothing is contacted)."""
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["", "localhost", "ray://head", "head:99999", "http://h:1"])
def test_bad_address_is_a_config_error(address: str) -> None:
    """Anything else is a ConfigError naming the valid forms."""
    with pytest.raises(ConfigError, match="valid: local, auto, HOST:PORT or ray://HOST:PORT"):
        check_address(address)


@pytest.mark.parametrize("command", ["collect", "eval", "sweep"])
def test_bad_cluster_option_is_one_line_exit_2(command: str, tmp_path: Path) -> None:
    """A bad --cluster fails before any work: one line on stderr, exit 2."""
    args = {
        "collect": ["--out", str(tmp_path / "d"), "--episodes", "1"],
        "eval": ["--model", GRBAL, "--quiet"],
        "sweep": ["--data", str(tmp_path), "--out", str(tmp_path / "s")],
    }[command]
    r = _roach(command, *args, "--cluster", "nowhere")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cluster 'nowhere': not an address" in lines[0], r.stderr


def test_unreachable_cluster_is_one_line_exit_2(tmp_path: Path) -> None:
    """Nothing listening at the address: one line naming it, exit 2, within seconds."""
    r = _roach("collect", "--out", str(tmp_path / "d"), "--cluster", "127.0.0.1:1")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cluster 127.0.0.1:1: no cluster answers there" in lines[0]
    assert not (tmp_path / "d" / "manifest.json").exists()


def test_local_pool_never_imports_ray(tmp_path: Path) -> None:
    """Without --cluster, collection runs without Ray in the process."""
    code = (
        "import sys; from tools.cli import main; "
        f"assert main(['collect', '--out', {str(tmp_path / 'd')!r}, '--episodes', '2', "
        "'--workers', '1', '--no-progress']) == 0; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
