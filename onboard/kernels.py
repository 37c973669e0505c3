"""Numeric kernels of the dynamics MLP: forward, loss, gradient and one SGD step.

Pure functions: arrays and scalars in, results written into caller-owned buffers; no
I/O, no globals, no allocation inside the Numba kernels.

Parameter layout. All weights and biases of one parameter set live in one flat float32
vector ``theta`` [P], layer by layer: ``layers.i.weight`` ([out, in], row-major, the
PyTorch/ONNX layout) followed by ``layers.i.bias`` ([out]). ``dims`` (int64 [L+1]) gives
the widths ``[in, hidden..., out]``. A flat vector makes "reset to the meta-learned
parameters" one copy and the SGD step one vector update, and ``param_views`` turns it
back into per-layer matrices without copying (for the BLAS planning forward).

The network (docs/model-format.md): ``h = xn``; per layer ``h = h @ W.T + b``, ReLU
between layers, none after the last; the output is the normalised delta.

Why two forwards. Numba's ``np.dot`` calls BLAS only when scipy is installed, which the
onboard extra does not pull in. The vectorised loop kernels below reach about 30 GFLOP/s
on one x86 core (AVX2), numpy's matmul (OpenBLAS sgemm) about 100 on the same core, and
the gap is wider on small ARM cores, where OpenBLAS has hand-written kernels. Planning
(N x H x network, GFLOPs per tick) therefore uses ``forward_blas`` from Python (see
onboard/rollout.py): 3 library calls per step cost microseconds of Python. The
adaptation step (M <= 32 rows, tens of MFLOPs) runs through BLAS too
(onboard/sgd_blas.py), measured faster than these loops at 2x128 and 2x500
(docs/performance.md); the loop kernels stay as its reference in the tests and as the
model loader's forward. ``roach bench onboard`` measures both forwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from onboard.jit import cached_njit

# Reassociation lets LLVM vectorise the dot products; no "nnan"/"ninf", so a NaN in the
# data still reaches the loss and the adaptation guard sees it.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

# ---------------------------------------------------------------------------------------
# Parameter packing (Python, done at load time and never inside the tick)
# ---------------------------------------------------------------------------------------


def layer_dims(weights: Sequence[np.ndarray]) -> np.ndarray:
    """Widths ``[in, hidden..., out]`` (int64 [L+1]) of weights given as [out, in] arrays."""
    dims = [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]
    return np.asarray(dims, dtype=np.int64)


def n_params(dims: np.ndarray) -> int:
    """Number of scalars P in the flat parameter vector for these widths."""
    return int(sum(int(dims[i + 1]) * (int(dims[i]) + 1) for i in range(len(dims) - 1)))


def pack_params(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> np.ndarray:
    """Flat float32 parameter vector [P] from per-layer weights [out, in] and biases [out]."""
    parts: list[np.ndarray] = []
    for w, b in zip(weights, biases, strict=True):
        parts.append(np.asarray(w, dtype=np.float32).ravel())
        parts.append(np.asarray(b, dtype=np.float32).ravel())
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def param_views(
    theta: np.ndarray, dims: np.ndarray
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Per-layer views (no copy) of a flat vector: weights [out, in] and biases [out]."""
    ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    off = 0
    for i in range(len(dims) - 1):
        n_in, n_out = int(dims[i]), int(dims[i + 1])
        ws.append(theta[off : off + n_out * n_in].reshape(n_out, n_in))
        off += n_out * n_in
        bs.append(theta[off : off + n_out])
        off += n_out
    return tuple(ws), tuple(bs)


def work_sizes(dims: np.ndarray, max_rows: int) -> tuple[int, int]:
    """Flat buffer lengths (activations, one gradient buffer) for up to ``max_rows`` rows."""
    acts = max_rows * int(np.sum(dims[1:-1]))
    grad_rows = max_rows * int(np.max(dims))
    return max(acts, 1), grad_rows


# ---------------------------------------------------------------------------------------
# BLAS forward for large batches (planning)
# ---------------------------------------------------------------------------------------


def forward_blas(
    x: np.ndarray,
    weights_t: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    hidden_bufs: Sequence[np.ndarray],
    out: np.ndarray,
) -> np.ndarray:
    """Batched forward with numpy matmul into preallocated buffers; returns ``out``.

    x: [N, in] float32 C-contiguous. weights_t: per layer ``W.T`` ([in, out], any BLAS
    layout; a transposed view of the [out, in] weight is used without copying).
    hidden_bufs: per hidden layer [N, width] float32. out: [N, out] float32.
    """
    h = x
    n_layers = len(weights_t)
    # Blown-up inputs overflow to inf/nan; the callers' guards (the planner's cost check,
    # the model's cross-check) handle the result, so the warnings are only noise.
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(n_layers):
            dst = out if i == n_layers - 1 else hidden_bufs[i]
            np.matmul(h, weights_t[i], out=dst)
            # One fused pass instead of numpy's two (+= then maximum): ~7x less time per
            # [N, width] block, a few percent of the planning step at width 500.
            bias_act_nb(dst, biases[i], i < n_layers - 1)
            h = dst
    return out


@cached_njit(fastmath=_FASTMATH, nogil=True)
def bias_act_nb(dst: np.ndarray, b: np.ndarray, relu: bool) -> None:  # pragma: no cover - compiled
    """In place: dst[r, c] += b[c], then max(., 0) if relu. dst [n, m], b [m]."""
    n, m = dst.shape
    for r in range(n):
        for c in range(m):
            v = dst[r, c] + b[c]
            if relu and v < 0.0:
                v = 0.0
            dst[r, c] = v


# ---------------------------------------------------------------------------------------
# Numba kernels (adaptation; also the reference forward for the oracle tests)
# ---------------------------------------------------------------------------------------


@cached_njit(fastmath=_FASTMATH)
def _dense(
    src: np.ndarray, w: np.ndarray, b: np.ndarray, dst: np.ndarray, relu: bool
) -> None:  # pragma: no cover - compiled
    """dst[r, o] = act(b[o] + sum_i w[o, i] * src[r, i]) for src [n, in], w [out, in]."""
    n, n_in = src.shape
    n_out = w.shape[0]
    for r in range(n):
        for o in range(n_out):
            s = b[o]
            for i in range(n_in):
                s += w[o, i] * src[r, i]
            if relu and s < 0.0:
                s = 0.0
            dst[r, o] = s


@cached_njit(fastmath=_FASTMATH)
def forward_nb(  # pragma: no cover - compiled
    theta: np.ndarray, dims: np.ndarray, xn: np.ndarray, out: np.ndarray, acts: np.ndarray
) -> None:
    """Forward pass on normalised inputs.

    theta: [P] float32; dims: [L+1] int64; xn: [n, in] float32; out: [n, out] float32;
    acts: flat float32 work buffer (>= n * sum(hidden)), left holding the post-ReLU
    activations of every hidden layer (layer l at rows-major block l) for the backward.
    """
    n = xn.shape[0]
    n_layers = dims.shape[0] - 1
    src = xn
    off = 0
    a_off = 0
    for layer in range(n_layers):
        n_in = dims[layer]
        n_out = dims[layer + 1]
        w = theta[off : off + n_out * n_in].reshape((n_out, n_in))
        off += n_out * n_in
        b = theta[off : off + n_out]
        off += n_out
        if layer == n_layers - 1:
            _dense(src, w, b, out, False)
        else:
            dst = acts[a_off : a_off + n * n_out].reshape((n, n_out))
            a_off += n * n_out
            _dense(src, w, b, dst, True)
            src = dst


@cached_njit(fastmath=_FASTMATH)
def mse_loss_nb(  # pragma: no cover - compiled
    theta: np.ndarray,
    dims: np.ndarray,
    xn: np.ndarray,
    tn: np.ndarray,
    out: np.ndarray,
    acts: np.ndarray,
) -> float:
    """Mean over the n x out elements of (forward(xn) - tn)^2; out/acts are work buffers."""
    forward_nb(theta, dims, xn, out, acts)
    n, m = tn.shape
    s = 0.0
    for r in range(n):
        for j in range(m):
            d = np.float64(out[r, j]) - np.float64(tn[r, j])
            s += d * d
    return s / (n * m)


@cached_njit(fastmath=_FASTMATH)
def loss_and_grad_nb(  # pragma: no cover
    theta: np.ndarray,
    dims: np.ndarray,
    xn: np.ndarray,
    tn: np.ndarray,
    grad: np.ndarray,
    out: np.ndarray,
    acts: np.ndarray,
    g_a: np.ndarray,
    g_b: np.ndarray,
) -> float:
    """MSE loss (returned, float64) and its gradient w.r.t. theta (written into grad [P]).

    xn: [n, in] normalised inputs; tn: [n, out] normalised delta targets; out [n, out];
    acts: see forward_nb; g_a, g_b: flat float32 buffers of >= n * max(dims).
    """
    n, m = tn.shape
    n_layers = dims.shape[0] - 1
    forward_nb(theta, dims, xn, out, acts)
    # dL/d(output) for L = mean over n*m squared errors.
    g = g_a[: n * m].reshape((n, m))
    scale = 2.0 / (n * m)
    s = 0.0
    for r in range(n):
        for j in range(m):
            d = out[r, j] - tn[r, j]
            s += np.float64(d) * np.float64(d)
            g[r, j] = scale * d
    loss = s / (n * m)
    # Offsets of every layer's weight block and activation block, walked backwards.
    w_end = theta.shape[0]
    a_end = 0
    for layer in range(n_layers - 1):
        a_end += n * dims[layer + 1]
    use_a = True
    for layer in range(n_layers - 1, -1, -1):
        n_in = dims[layer]
        n_out = dims[layer + 1]
        b_off = w_end - n_out
        w_off = b_off - n_out * n_in
        w_end = w_off
        w = theta[w_off : w_off + n_out * n_in].reshape((n_out, n_in))
        gw = grad[w_off : w_off + n_out * n_in].reshape((n_out, n_in))
        gb = grad[b_off : b_off + n_out]
        if layer == 0:
            src = xn
        else:
            a_end -= n * n_in
            src = acts[a_end : a_end + n * n_in].reshape((n, n_in))
        for o in range(n_out):
            acc = 0.0
            for r in range(n):
                acc += g[r, o]
            gb[o] = acc
            for i in range(n_in):
                gw[o, i] = 0.0
            for r in range(n):
                go = g[r, o]
                for i in range(n_in):
                    gw[o, i] += go * src[r, i]
        if layer > 0:
            # Back through W, then through the ReLU (zero gradient where the unit was off).
            nxt = (g_b if use_a else g_a)[: n * n_in].reshape((n, n_in))
            for r in range(n):
                for i in range(n_in):
                    nxt[r, i] = 0.0
                for o in range(n_out):
                    go = g[r, o]
                    for i in range(n_in):
                        nxt[r, i] += go * w[o, i]
                for i in range(n_in):
                    if src[r, i] <= 0.0:
                        nxt[r, i] = 0.0
            g = nxt
            use_a = not use_a
    return loss


@cached_njit(fastmath=_FASTMATH)
def sgd_step_nb(  # pragma: no cover
    theta: np.ndarray,
    dims: np.ndarray,
    xn: np.ndarray,
    tn: np.ndarray,
    lr: float,
    theta_out: np.ndarray,
    grad: np.ndarray,
    out: np.ndarray,
    acts: np.ndarray,
    g_a: np.ndarray,
    g_b: np.ndarray,
) -> tuple[float, float]:
    """One SGD step ``theta_out = theta - lr * dL/dtheta``; returns (loss_before, loss_after).

    Shapes as in loss_and_grad_nb; theta_out [P] may not alias theta.
    """
    loss_before = loss_and_grad_nb(theta, dims, xn, tn, grad, out, acts, g_a, g_b)
    for k in range(theta.shape[0]):
        theta_out[k] = theta[k] - lr * grad[k]
    loss_after = mse_loss_nb(theta_out, dims, xn, tn, out, acts)
    return loss_before, loss_after
