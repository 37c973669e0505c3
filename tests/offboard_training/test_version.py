"""The code version names the source, so a commit that only adds models keeps it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from offboard_training.version import CODE_PACKAGES, code_version, source_version


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip


def test_the_version_changes_with_the_code_only(tmp_path: Path) -> None:
    assert source_version(tmp_path, "1.0") == "1.0"  # not a checkout
    _git(tmp_path, "init", "-q")
    for package in CODE_PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "code")
    first = source_version(tmp_path, "1.0")
    assert first.startswith("1.0+src.") and not first.endswith(".dirty")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.onnx").write_bytes(b"model")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "models")
    assert source_version(tmp_path, "1.0") == first  # a models-only commit keeps it
    (tmp_path / "onboard" / "a.py").write_text("x = 2\n")
    assert source_version(tmp_path, "1.0") == first + ".dirty"
    _git(tmp_path, "commit", "-qam", "change")
    assert source_version(tmp_path, "1.0") not in (first, first + ".dirty")


def test_this_checkout_has_a_source_version() -> None:
    assert "+src." in code_version()
