"""The BLAS adaptation step is deterministic (its agreement with PyTorch's autograd is in
test_numerics_oracle.py)."""

from __future__ import annotations

import numpy as np

from onboard.bench.step_times import random_model
from onboard.sgd_blas import BlasSgd


def test_sgd_step_is_deterministic() -> None:
    """The same inputs give bit-identical results (what replay --check relies on)."""
    model = random_model((128, 128), seed=1)
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((32, 24)).astype(np.float32)
    tn = rng.standard_normal((32, 24)).astype(np.float32)
    sgd = BlasSgd(model.dims, 32)
    outs = []
    for _ in range(2):
        t, g = np.empty_like(model.theta), np.empty_like(model.theta)
        losses = sgd.sgd_step(model.theta, xn, tn, 0.01, t, g)
        outs.append((losses, t.copy(), g.copy()))
    assert outs[0][0] == outs[1][0]
    assert np.array_equal(outs[0][1], outs[1][1]) and np.array_equal(outs[0][2], outs[1][2])
