"""Numba's ``njit`` with its on-disk cache where there is somewhere to keep it.

``cache=True`` makes Numba look for a writable cache directory when the function is
decorated: beside the source (``__pycache__``), in ``NUMBA_CACHE_DIR``, or in the user's
cache folder. On a read-only install run by a service user without a writable home
there is none, and Numba raises "no locator available" at import time. The robot must
still run there (it compiles at start-up instead), so the decorator falls back to no
cache. ``roach deploy`` sets ``NUMBA_CACHE_DIR`` and warms it (docs/deploy.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def cached_njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)``, or without the cache if none can be kept."""

    def wrap(fn: Callable[..., Any]) -> Any:
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            return njit(**options)(fn)

    return wrap
