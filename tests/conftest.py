"""Project-wide pytest options.

Hardware tests live in tests/hardware/, are marked ``hardware`` and run only when a real
robot's port is given: ``pytest -m hardware --port /dev/ttyAMA0``.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--port", action="store", default=None, help="serial port of a real robot (hardware tests)"
    )


@pytest.fixture
def hardware_port(request: pytest.FixtureRequest) -> str:
    port = request.config.getoption("--port")
    if not port:
        pytest.skip("hardware test: pass --port DEVICE to run against a real robot")
    return str(port)
