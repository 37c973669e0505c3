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
    kept_steps_future_loss,
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


def test_kept_steps_loss_chains_the_steps_one_transition_apart() -> None:
    """S kept steps: step s starts from step s-1's weights, adapts on transitions s..s+M-1
    and is scored on the K after them; S = 1 is the published one-step loss."""
    model = _model((8,))
    rng = np.random.default_rng(5)
    M, K, S, lr = 4, 3, 3, 0.2
    x, y = (torch.as_tensor(rng.standard_normal((S - 1 + M + K, 24))) for _ in range(2))
    params = model.layer_params()
    one = kept_steps_future_loss(params, x[: M + K], y[: M + K], M, K, lr)
    published = adapted_future_loss(params, x[:M], y[:M], x[M : M + K], y[M : M + K], lr)
    assert torch.allclose(one, published, atol=1e-12)
    expected, p = 0.0, params
    for s in range(S):
        p = adapt(p, x[s : s + M], y[s : s + M], lr)
        expected = expected + mse(p, x[s + M : s + M + K], y[s + M : s + M + K])
    got = kept_steps_future_loss(params, x, y, M, K, lr)
    assert torch.allclose(got, expected / S, atol=1e-12)
    batched = vmap(kept_steps_future_loss, in_dims=(None, 0, 0, None, None, None))(
        params, torch.stack([x, x]), torch.stack([y, y]), M, K, lr
    )
    assert torch.allclose(batched, got.expand(2), atol=1e-12)
    got.backward()
    assert all(torch.isfinite(q.grad).all() for q in model.parameters())


def test_size_accounting() -> None:
    """Parameter count and planning FLOPs follow the layer widths (published 2x500 ~5.5 GFLOP
    at 2000 candidates)."""
    assert parameter_count((256, 256)) == 24 * 256 + 256 + 256 * 256 + 256 + 256 * 24 + 24
    assert abs(planning_flops((500, 500), 2000, 5) / 1e9 - 5.48) < 0.01
