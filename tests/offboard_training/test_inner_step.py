"""The GrBAL adaptation step and meta-loss against hand-computed values."""

from __future__ import annotations

import numpy as np
import torch
from torch.func import vmap

from offboard_training.model import (
    DynamicsNet,
    Normalizer,
    adapt,
    adapted_future_loss,
    mse,
    parameter_count,
    planning_flops,
)


def _model(hidden: tuple[int, ...], seed: int = 0) -> DynamicsNet:
    torch.manual_seed(seed)
    norm = Normalizer(np.zeros(24), np.ones(24), np.zeros(24), np.ones(24))
    return DynamicsNet(hidden, norm).double()


def _hand_grad(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Backpropagation by hand for a one-hidden-layer ReLU net and the mean-squared loss."""
    z1 = x @ p["layers.0.weight"].T + p["layers.0.bias"]
    h1 = np.maximum(z1, 0.0)
    out = h1 @ p["layers.1.weight"].T + p["layers.1.bias"]
    g = 2.0 * (out - y) / out.size
    gz1 = (g @ p["layers.1.weight"]) * (z1 > 0)
    return {
        "layers.1.weight": g.T @ h1,
        "layers.1.bias": g.sum(0),
        "layers.0.weight": gz1.T @ x,
        "layers.0.bias": gz1.sum(0),
    }


def test_adapt_equals_hand_computed_sgd_step() -> None:
    """adapt() is theta - lr * d(mean over M x 24 squared error)/d theta, as backprop by hand."""
    model = _model((16,))
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 24)), rng.standard_normal((8, 24))
    params = model.layer_params()
    new = adapt(params, torch.as_tensor(x), torch.as_tensor(y), 0.05)
    p_np = {k: v.detach().numpy() for k, v in params.items()}
    grads = _hand_grad(p_np, x, y)
    for k in params:
        np.testing.assert_allclose(new[k].detach().numpy(), p_np[k] - 0.05 * grads[k], atol=1e-12)


def test_adapt_gradient_matches_finite_differences() -> None:
    """The step's gradient agrees with central finite differences on sampled coordinates."""
    model = _model((8, 8), seed=3)
    rng = np.random.default_rng(2)
    x, y = (
        torch.as_tensor(rng.standard_normal((5, 24))),
        torch.as_tensor(rng.standard_normal((5, 24))),
    )
    params = {k: v.detach().clone() for k, v in model.layer_params().items()}
    lr, eps = 1.0, 1e-6
    step = adapt(params, x, y, lr)
    for name in params:
        flat = params[name].reshape(-1)
        for j in rng.choice(flat.numel(), size=min(5, flat.numel()), replace=False):
            plus = {k: v.clone() for k, v in params.items()}
            minus = {k: v.clone() for k, v in params.items()}
            plus[name].view(-1)[j] += eps
            minus[name].view(-1)[j] -= eps
            fd = (mse(plus, x, y) - mse(minus, x, y)).item() / (2 * eps)
            analytic = (params[name].reshape(-1)[j] - step[name].reshape(-1)[j]).item() / lr
            assert abs(fd - analytic) < 1e-6 * max(1.0, abs(fd))


def test_vmapped_meta_loss_equals_loop_and_is_differentiable() -> None:
    """The batched GrBAL loss equals a per-window loop, and its outer gradient is finite."""
    model = _model((16, 16))
    rng = np.random.default_rng(4)
    xp, yp, xf, yf = (torch.as_tensor(rng.standard_normal((6, 4, 24))) for _ in range(4))
    params = model.layer_params()
    batched = vmap(adapted_future_loss, in_dims=(None, 0, 0, 0, 0, None))(
        params, xp, yp, xf, yf, 0.1
    ).mean()
    looped = torch.stack(
        [adapted_future_loss(params, xp[i], yp[i], xf[i], yf[i], 0.1) for i in range(6)]
    ).mean()
    assert torch.allclose(batched, looped, atol=1e-12)
    batched.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_size_accounting() -> None:
    """Parameter count and planning FLOPs follow the layer widths (published 2x500 ~5.5 GFLOP
    at 2000 candidates)."""
    assert parameter_count((256, 256)) == 24 * 256 + 256 + 256 * 256 + 256 + 256 * 24 + 24
    assert abs(planning_flops((500, 500), 2000, 5) / 1e9 - 5.48) < 0.01
