"""Fixtures for the command-line tests (helpers live in cli_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import SHIPPED_GRBAL, write_random_model


@pytest.fixture(scope="session")
def random_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid random model (hidden 32x32) following docs/model-format.md."""
    return write_random_model(tmp_path_factory.mktemp("models") / "random.onnx")


def controller_models() -> list[str]:
    """The models the end-to-end runs use: the random fixture and the shipped GrBAL model
    (which must exist: it is part of the repository)."""
    return ["random", "shipped-grbal"]


@pytest.fixture(params=controller_models())
def controller_model(request: pytest.FixtureRequest, random_model_file: Path) -> Path:
    return random_model_file if request.param == "random" else SHIPPED_GRBAL
