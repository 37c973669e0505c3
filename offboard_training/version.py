"""The code version written into datasets and model files: package version + source hash."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

CODE_PACKAGES = ("robot_contract", "firmware_bridge", "onboard", "offboard_training")
"""The source whose hash names the code that made a dataset or a model."""


def code_version() -> str:
    """``0.1.0+src.1a2b3c4d5e`` (``.dirty`` appended when the code packages have
    uncommitted changes; ``0.1.0`` alone outside a git checkout).

    The hash is of the git trees of the code packages at HEAD, not of the commit: a
    commit that only adds models, data or documents keeps it, so a model file trained
    before its commit and one retrained at that commit are the same bytes.
    """
    try:
        version = metadata.version("roach-grbal")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return source_version(Path(__file__).resolve().parent.parent, version)


def source_version(root: Path, version: str) -> str:
    """``version+src.HASH[.dirty]`` for the checkout at ``root`` (``version`` if none)."""
    try:
        trees = _git(root, "ls-tree", "HEAD", "--", *CODE_PACKAGES)
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *CODE_PACKAGES)
    except (OSError, subprocess.SubprocessError):
        return version
    if not trees:
        return version
    digest = hashlib.sha256(trees.encode()).hexdigest()[:10]
    return f"{version}+src.{digest}" + (".dirty" if dirty.strip() else "")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True
    ).stdout
