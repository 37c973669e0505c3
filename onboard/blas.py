"""Thread count of the BLAS library behind numpy's matmul (the planning forward).

Why this exists. OpenBLAS splits each product across all cores by default. On a
machine whose cores are also busy (other processes, the telemetry reader, the logger),
its worker threads wait for a core and a 5 ms product can take 8 ms or more, with
p99 spikes far beyond that: a bad trade for a control loop with a deadline. One thread
gives steady times at the core's full matrix speed. ``roach bench onboard`` prints
both so the choice can be made per machine.

The count is set through the library's own ``*_set_num_threads`` entry point, found
among the libraries already loaded into the process (numpy wheels ship OpenBLAS with
prefixed symbol names), so no extra dependency is needed. Environment variables
(``OPENBLAS_NUM_THREADS``) would have to be set before numpy is imported.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

_SET_NAMES = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GET_NAMES = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


def _openblas_libs() -> list[ctypes.CDLL]:
    import numpy  # noqa: F401  (loads the BLAS library we are looking for)

    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    paths: list[str] = []
    for line in maps.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and "openblas" in parts[-1].lower() and parts[-1] not in paths:
            paths.append(parts[-1])
    libs = []
    for p in paths:
        try:
            libs.append(ctypes.CDLL(p))
        except OSError:
            continue
    return libs


def set_blas_threads(n: int) -> bool:
    """Sets the OpenBLAS thread count (n >= 1); returns False if no OpenBLAS was found."""
    if n < 1:
        raise ValueError(f"BLAS thread count {n} must be >= 1")
    done = False
    for lib in _openblas_libs():
        for name in _SET_NAMES:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                done = True
                break
    return done


def get_blas_threads() -> int | None:
    """The OpenBLAS thread count, or None if no OpenBLAS was found."""
    for lib in _openblas_libs():
        for name in _GET_NAMES:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None
