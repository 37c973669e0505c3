"""The code version written into datasets and model files: package version + git commit."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path


def code_version() -> str:
    """``0.1.0+g1a2b3c4`` (``0.1.0`` alone outside a git checkout)."""
    try:
        version = metadata.version("roach-grbal")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version
