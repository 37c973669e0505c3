"""The C firmware's host build, compiled once per test session (gcc or cc, or $CC)."""

from __future__ import annotations

import ctypes

import pytest

from firmware_bridge.board import host


@pytest.fixture(scope="session")
def board_lib() -> ctypes.CDLL:
    """The host shared library of firmware_bridge/board, built if its sources changed."""
    return host.load_library(host.build())
