"""Building a deployment bundle on this computer (``roach deploy``).

A bundle is a folder named by its id (UTC time + the start of its manifest's hash)::

    manifest.json   every other file's sha256 and size, the code version, the models'
                    metadata, the model and config the service runs
    activate.py     the robot's side (onboard/deploy/target.py), standard library only
    code/           the onboard package tree: robot_contract, firmware_bridge (no
                    simulator, no fake robot), onboard, and the `roach run` command line
    models/         the model files
    config/run.toml the run config (the defaults when none is given)
    systemd/roach-run.service

Nothing in it is built for this computer: the robot's Python with the ``onboard`` extra
runs the tree as it is (``PYTHONPATH=current/code``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from onboard.deploy import target
from onboard.deploy.unit import UNIT_NAME, UnitSettings, unit_text
from robot_contract.errors import ConfigError
from robot_contract.model_file import read_model_file

SOURCE_ROOT = Path(__file__).resolve().parents[2]
CODE: tuple[str, ...] = ("robot_contract", "firmware_bridge", "onboard")
CLI_FILES: tuple[str, ...] = ("tools/__init__.py", "tools/cli.py", "tools/cmd_run.py")
LEFT_OUT = ("firmware_bridge/sim", "firmware_bridge/fake", "onboard/bench")
"""The simulator, the fake robot and the benchmarks do not run on the robot."""


def code_version() -> dict[str, str]:
    """The package version and, from a git checkout, the commit (``-dirty`` if changed)."""
    out = {"package": _package_version()}
    try:
        res = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        if res.returncode == 0 and res.stdout.strip():
            out["git"] = res.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out


def _package_version() -> str:
    try:
        return metadata.version("roach-grbal")
    except metadata.PackageNotFoundError:
        return "unknown"


def _copy_code(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in CODE:
        shutil.copytree(SOURCE_ROOT / pkg, dest / pkg, ignore=ignore)
    for rel in LEFT_OUT:
        shutil.rmtree(dest / rel, ignore_errors=True)
    for rel in CLI_FILES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCE_ROOT / rel, dest / rel)


def build_bundle(
    out_dir: Path, models: list[Path], config: Path | None, unit: UnitSettings
) -> Path:
    """Writes a bundle under ``out_dir``; returns its folder. ModelFileError or
    ConfigError (one line) for a model or config that would not run."""
    if not models:
        raise ConfigError("give at least one --model")
    metas: dict[str, Any] = {}
    for m in models:
        metas[f"models/{m.name}"] = dataclasses.asdict(read_model_file(m).meta)
    if config is not None:
        from onboard.config import load_config

        load_config(config)  # refuse a bad config here, not on the robot
    stage = out_dir / "staging"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    _copy_code(stage / "code")
    (stage / "models").mkdir()
    for m in models:
        shutil.copyfile(m, stage / "models" / m.name)
    (stage / "config").mkdir()
    if config is not None:
        shutil.copyfile(config, stage / "config" / "run.toml")
    else:
        (stage / "config" / "run.toml").write_text("# the built-in defaults\n")
    settings = dataclasses.replace(unit, model=f"models/{models[0].name}")
    (stage / "systemd").mkdir()
    (stage / "systemd" / UNIT_NAME).write_text(unit_text(settings))
    shutil.copyfile(Path(target.__file__), stage / "activate.py")
    files = {
        p.relative_to(stage).as_posix(): {"sha256": target.sha256(p), "size": p.stat().st_size}
        for p in sorted(stage.rglob("*"))
        if p.is_file()
    }
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    bundle_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + digest[:10]
    manifest = {
        "bundle_id": bundle_id,
        "created_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "code_version": code_version(),
        "model": settings.model,
        "config": "config/run.toml",
        "models": metas,
        "unit": dataclasses.asdict(settings),
        "files": files,
    }
    (stage / target.MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    final = out_dir / bundle_id
    if final.exists():
        shutil.rmtree(final)
    stage.rename(final)
    return final
