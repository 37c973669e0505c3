"""Oracle tests: the onboard kernels against onnxruntime (forward) and PyTorch (gradient)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onboard_fixtures import random_model_arrays, write_random_model

from onboard import kernels
from onboard.adaptation import Adapter
from onboard.model import load_model, model_from_arrays
from onboard.rollout import Rollout, fold_normalisation
from onboard.sgd_blas import BlasSgd


@pytest.mark.parametrize("hidden", [(32, 32), (64, 48, 40), (500, 500)])
def test_plain_and_planning_forward_match_onnxruntime(
    tmp_path: Path, hidden: tuple[int, ...]
) -> None:
    """The plain forward and the planning forward (biases folded into the products) equal
    onnxruntime's delta_norm on random batches (<= 1e-5)."""
    path = write_random_model(tmp_path / "m.onnx", hidden=hidden, seed=3)
    model = load_model(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    weights = kernels.augment([w.T for w in model.weights], model.biases)
    for n in (1, 7, 256):
        x = (model.input_mean + model.input_std * rng.standard_normal((n, 24))).astype(np.float32)
        (ref,) = sess.run(["delta_norm"], {"x": x})
        ours = model.predict_delta_norm(x)
        assert np.max(np.abs(ours - ref)) <= 1e-5
        xn = np.ones((n, 25), np.float32)
        xn[:, :24] = model.normalise_input(x)
        hidden_bufs, zeros = kernels.forward_buffers(model.dims, n)
        out = np.empty((n, 24), np.float32)
        kernels.forward_blas(xn, weights, hidden_bufs, out, zeros)
        assert np.max(np.abs(out - ref)) <= 1e-5
        assert all(np.all(b[:, -1] == 1.0) for b in hidden_bufs)  # the bias inputs stay 1


def test_rollout_first_step_matches_onnxruntime_delta(tmp_path: Path) -> None:
    """The folded-normalisation rollout's first predicted delta equals onnxruntime's delta."""
    path = write_random_model(tmp_path / "m.onnx", hidden=(32, 32), seed=4)
    model = load_model(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    state = (rng.standard_normal(24)).astype(np.float32)
    actions = rng.uniform(2, 9, (50, 2, 2)).astype(np.float32)
    ro = Rollout(model, 50, 2)
    states = ro.predict(fold_normalisation(model, model.theta), state, actions)
    x = np.concatenate([np.repeat(state[None, 2:], 50, 0), actions[:, 0]], axis=1)
    (delta,) = sess.run(["delta"], {"x": x.astype(np.float32)})
    assert np.max(np.abs((states[:, 1] - states[:, 0]) - delta)) <= 1e-5


def _torch_step(
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    xn: np.ndarray,
    tn: np.ndarray,
    lr: float,
) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Loss, flat-order gradients and one SGD step with PyTorch autograd (float64)."""
    ps = []
    for w, b in zip(weights, biases):
        ps.append(torch.tensor(w, dtype=torch.float64, requires_grad=True))
        ps.append(torch.tensor(b, dtype=torch.float64, requires_grad=True))
    h = torch.tensor(xn, dtype=torch.float64)
    n_layers = len(weights)
    for i in range(n_layers):
        h = h @ ps[2 * i].T + ps[2 * i + 1]
        if i < n_layers - 1:
            h = torch.relu(h)
    loss = torch.mean((h - torch.tensor(tn, dtype=torch.float64)) ** 2)
    grads = torch.autograd.grad(loss, ps)
    g = [gr.numpy() for gr in grads]
    new = [(p.detach() - lr * gr).numpy() for p, gr in zip(ps, grads)]
    return float(loss.detach()), g, new


@pytest.mark.parametrize(
    ("hidden", "max_rows", "n"),
    [((32, 32), 16, 16), ((64, 48, 40), 8, 5), ((128, 128), 32, 32), ((500, 500), 23, 23),
     ((64,), 8, 5)],
)  # fmt: skip
def test_sgd_step_matches_pytorch(hidden: tuple[int, ...], max_rows: int, n: int) -> None:
    """The adaptation step's losses, gradient and one-step update (onboard/sgd_blas.py, on
    n of its max_rows rows) equal PyTorch autograd's (<= 1e-4 relative)."""
    weights, biases, _ = random_model_arrays(hidden, seed=5)
    dims = kernels.layer_dims(weights)
    theta = kernels.pack_params(weights, biases)
    rng = np.random.default_rng(6)
    xn = rng.standard_normal((n, 24)).astype(np.float32)
    tn = rng.standard_normal((n, 24)).astype(np.float32)
    lr = 0.05
    grad, theta_out = np.empty_like(theta), np.empty_like(theta)
    before, after = BlasSgd(dims, max_rows).sgd_step(theta, xn, tn, lr, theta_out, grad)
    t_loss, t_grads, t_new = _torch_step(weights, biases, xn, tn, lr)
    assert before == pytest.approx(t_loss, rel=1e-5)
    ref_grad = np.concatenate([g.ravel() for g in t_grads])
    scale = np.max(np.abs(ref_grad))
    assert np.max(np.abs(grad - ref_grad)) <= 1e-4 * scale
    ref_new = np.concatenate([p.ravel() for p in t_new])
    assert np.max(np.abs(theta_out - ref_new)) <= 1e-4 * np.max(np.abs(ref_new))
    # Per-parameter relative check where the step is not negligible.
    step_ref = ref_new - theta.astype(np.float64)
    step = theta_out.astype(np.float64) - theta.astype(np.float64)
    big = np.abs(step_ref) > 1e-3 * np.max(np.abs(step_ref))
    assert np.max(np.abs(step[big] - step_ref[big]) / np.abs(step_ref[big])) <= 1e-2
    w_new, b_new = kernels.param_views(ref_new.astype(np.float32), dims)
    assert after == pytest.approx(_torch_step(list(w_new), list(b_new), xn, tn, lr)[0], rel=1e-5)
    assert after < before


def test_adapter_step_matches_pytorch() -> None:
    """Adapter.adapt (grbal) on a window ends at the parameters one PyTorch SGD step gives
    from the meta-learned ones, and reports the same losses."""
    weights, biases, norm = random_model_arrays((128, 128), seed=2)
    model = model_from_arrays(weights, biases, norm, M=16, inner_lr=0.01)
    rng = np.random.default_rng(5)
    states = rng.standard_normal((17, 24))
    actions = rng.uniform(2.0, 9.0, (16, 2))
    adapter = Adapter(model, "grbal", M=16, inner_lr=0.01)
    res = adapter.adapt(states, actions)
    x = np.concatenate([states[:-1, 2:], actions], axis=1)
    xn = ((x - model.input_mean.astype(np.float64)) / model.input_std).astype(np.float32)
    tn = ((states[1:] - states[:-1] - model.delta_mean) / model.delta_std).astype(np.float32)
    before, _, new = _torch_step(weights, biases, xn, tn, 0.01)
    w_new, b_new = new[0::2], new[1::2]
    assert res.stepped and not res.fallback
    assert res.loss_before == pytest.approx(before, rel=1e-5)
    assert res.loss_after == pytest.approx(_torch_step(w_new, b_new, xn, tn, 0.01)[0], rel=1e-5)
    np.testing.assert_allclose(adapter.params, kernels.pack_params(w_new, b_new), rtol=0, atol=1e-6)


def test_relu_gradient_is_zero_for_inactive_units() -> None:
    """A hidden unit that is off for every row gets exactly zero weight and bias gradient."""
    weights, biases, _ = random_model_arrays((16, 16), seed=7)
    biases[0][3] = -1e3  # unit 3 of layer 0 is never active
    dims = kernels.layer_dims(weights)
    theta = kernels.pack_params(weights, biases)
    rng = np.random.default_rng(8)
    n = 9
    xn = rng.standard_normal((n, 24)).astype(np.float32)
    tn = rng.standard_normal((n, 24)).astype(np.float32)
    grad = np.empty_like(theta)
    BlasSgd(dims, n).sgd_step(theta, xn, tn, 0.01, np.empty_like(theta), grad)
    gw, gb = kernels.param_views(grad, dims)
    assert np.all(gw[0][3] == 0.0) and gb[0][3] == 0.0


def test_adapter_step_with_per_parameter_scales_matches_pytorch() -> None:
    """With a file's per-parameter step scales, each parameter moves by inner_lr x its scale
    x its PyTorch gradient (scales 0 freeze a parameter), in grbal and dyn-eval alike."""
    from dataclasses import replace

    weights, biases, norm = random_model_arrays((32, 32), seed=4)
    base = model_from_arrays(weights, biases, norm, M=16, inner_lr=0.01)
    rng = np.random.default_rng(8)
    scale = rng.uniform(0.0, 4.0, base.theta.shape).astype(np.float32)
    scale[: scale.size // 3] = 0.0
    model = replace(base, step_scale=scale)
    states = rng.standard_normal((17, 24))
    actions = rng.uniform(2.0, 9.0, (16, 2))
    x = np.concatenate([states[:-1, 2:], actions], axis=1)
    xn = ((x - model.input_mean.astype(np.float64)) / model.input_std).astype(np.float32)
    tn = ((states[1:] - states[:-1] - model.delta_mean) / model.delta_std).astype(np.float32)
    _, grads, _ = _torch_step(weights, biases, xn, tn, 0.01)
    want = base.theta - 0.01 * scale * np.concatenate([g.ravel() for g in grads])
    for mode in ("grbal", "dyn-eval"):
        adapter = Adapter(model, mode, M=16, inner_lr=0.01)
        res = adapter.adapt(states, actions)
        assert res.stepped, mode
        np.testing.assert_allclose(adapter.params, want, rtol=0, atol=1e-6)
        frozen = adapter.params[: scale.size // 3]
        np.testing.assert_array_equal(frozen, base.theta[: scale.size // 3])
