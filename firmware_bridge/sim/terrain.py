"""Small-scale ground roughness: a periodic random height field sampled under each leg.

MuJoCo's own height-field collisions cost about five times a plane's for this robot, so
each leg instead touches its own plane, which the simulator moves every chunk to the
height and tilt of the height field under that leg's hip. The body touches the level
ground plane. The field repeats every ``PERIOD_M`` in x and y (so it covers any distance),
its bumps are about ``CORRELATION_M`` across, and its peak-to-peak height is the
condition's ``roughness_mm``.
"""

from __future__ import annotations

import math

import numpy as np

CELLS = 64
CELL_M = 0.004
PERIOD_M = CELLS * CELL_M
CORRELATION_M = 0.01
MAX_TILT = 0.4
"""Largest ground slope (rise over run) a leg's plane is tilted to."""


Pattern = list[list[float]]
"""Heights on a CELLS x CELLS grid, peak-to-peak 1, as nested lists for fast scalar lookup."""


def make_pattern(rng: np.random.Generator) -> Pattern:
    """A smooth random periodic field (Gaussian-filtered white noise), peak-to-peak 1."""
    white = rng.standard_normal((CELLS, CELLS))
    k = np.fft.fftfreq(CELLS, d=CELL_M)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    sigma = CORRELATION_M / 2.0
    smooth = np.fft.ifft2(
        np.fft.fft2(white) * np.exp(-2.0 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    )
    h = smooth.real
    return ((h - h.min()) / (h.max() - h.min()) - 0.5).tolist()


def sample(pattern: Pattern, x: float, y: float, height_m: float) -> tuple[float, list[float]]:
    """Ground under the point (x, y) m for a field of peak-to-peak ``height_m``: the height
    in m and the plane orientation as a unit quaternion (w, x, y, z) that turns +z into the
    local ground normal. Bilinear within a cell, with the slope of that same patch (clipped
    to MAX_TILT). Scalar code: it runs for six legs every chunk, where numpy's per-call
    overhead would dominate."""
    u, v = x / CELL_M, y / CELL_M
    iu, iv = math.floor(u), math.floor(v)
    fu, fv = u - iu, v - iv
    i0, j0 = iu % CELLS, iv % CELLS
    r0, r1 = pattern[i0], pattern[(i0 + 1) % CELLS]
    j1 = (j0 + 1) % CELLS
    a, b, c, d = r0[j0], r1[j0], r0[j1], r1[j1]
    height = (a + (b - a) * fu) * (1 - fv) + (c + (d - c) * fu) * fv
    scale = height_m / CELL_M
    sx = ((b - a) * (1 - fv) + (d - c) * fv) * scale
    sy = ((c - a) * (1 - fu) + (d - b) * fu) * scale
    sx = MAX_TILT if sx > MAX_TILT else -MAX_TILT if sx < -MAX_TILT else sx
    sy = MAX_TILT if sy > MAX_TILT else -MAX_TILT if sy < -MAX_TILT else sy
    # Normal n ~ (-sx, -sy, 1); the shortest rotation from +z to n is q ~ (|n| + 1, sy, -sx, 0).
    w = math.sqrt(sx * sx + sy * sy + 1.0) + 1.0
    qn = math.sqrt(w * w + sx * sx + sy * sy)
    return height * height_m, [w / qn, sy / qn, -sx / qn, 0.0]
