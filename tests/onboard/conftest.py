"""Shared fixtures for tests/onboard/: a valid small random model file.

``write_random_model`` lives in onboard_fixtures.py (this folder is on sys.path during
the tests, so ``from onboard_fixtures import write_random_model`` works anywhere below).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from onboard_fixtures import write_random_model

__all__ = ["random_model_path", "write_random_model"]


@pytest.fixture
def random_model_path(tmp_path: Path) -> Path:
    """A valid random model file (hidden 32x32, seed 0) in the test's temporary folder."""
    return write_random_model(tmp_path / "random_model.onnx")
