"""The C board under the sanitizers, fed random and mutated byte streams (small budget)."""

from __future__ import annotations

import subprocess

import pytest

from firmware_bridge.board import host

FUZZ_SECONDS = 3.0
"""The budget in make test; `make fuzz-firmware` runs the same program for minutes."""


@pytest.mark.timeout(240)
def test_sanitizer_fuzz_finds_nothing():
    """ASan + UBSan build, random streams for a few seconds: exit 0, invariants hold."""
    try:
        exe = host.build(shared=False, sanitize=True)
    except Exception as exc:  # a compiler without the sanitizer runtimes
        pytest.fail(f"sanitizer build failed: {exc}")
    proc = subprocess.run(
        [str(exe), str(FUZZ_SECONDS), "11"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no invariant failed" in proc.stdout
    boards = int(proc.stdout.split()[1])
    assert boards > 10, proc.stdout
