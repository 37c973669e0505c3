"""The onboard code imports and runs from a read-only install with no writable home (a
service user on the robot) and writes nothing into the tree."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = (
    "import numpy as np, onboard.kernels as k, onboard.tasks as t;"
    "task = t.make_task(t.TaskConfig(name='circle'), np.eye(24)[10]);"
    "c = task.cost(np.zeros((3, 4, 24), np.float32));"
    "y = k.forward(np.ones(12, np.float32), np.array([2, 2, 2]), -np.ones((1, 2), np.float32));"
    "print('ran', bool(np.isfinite(c).all()), y.tolist())"
)


def _readonly_tree() -> Path:
    root = Path(tempfile.mkdtemp(prefix="roach-ro-"))
    root.chmod(0o755)
    for pkg in ("onboard", "robot_contract", "firmware_bridge"):
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222 | 0o444 | (0o111 if p.is_dir() else 0))
    root.chmod(0o555)
    return root


def test_import_and_run_kernels_from_a_read_only_install() -> None:
    """As an unprivileged user, from a tree nobody can write, HOME unwritable: the task
    cost and the forward import and run, and nothing is written into the tree."""
    root = _readonly_tree()
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONPATH": str(root)}
        cmd = [sys.executable, "-c", PROBE]
        if os.geteuid() == 0:  # root writes anywhere: run it as nobody, as a service user would
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            reach = subprocess.run(
                [*nobody, sys.executable, "-c", "import numpy"],
                cwd="/", env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if reach.returncode != 0:
                pytest.skip(
                    f"the interpreter's packages ({sys.prefix}) are not readable by uid 65534 "
                    "here (a checkout inside a private folder), so no unprivileged user can run it"
                )
            cmd = [*nobody, *cmd]
        res = subprocess.run(cmd, cwd="/", env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "ran True [[1.0, 1.0]]" in res.stdout
        assert not list(root.rglob("__pycache__"))
    finally:
        for dirpath, _dirs, _files in os.walk(root):
            Path(dirpath).chmod(0o755)
        shutil.rmtree(root)
