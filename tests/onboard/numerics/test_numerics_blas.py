"""The BLAS thread count of numpy's library (onboard/blas.py)."""

from __future__ import annotations

import pytest

from onboard.blas import get_blas_threads, set_blas_threads


def test_blas_thread_count_round_trips() -> None:
    """set_blas_threads changes what get_blas_threads reports (numpy's bundled OpenBLAS)."""
    before = get_blas_threads()
    if before is None:
        pytest.skip("numpy is not linked against OpenBLAS here")
    try:
        assert set_blas_threads(1)
        assert get_blas_threads() == 1
    finally:
        set_blas_threads(before)
    with pytest.raises(ValueError):
        set_blas_threads(0)
