"""Numeric kernels of the dynamics MLP: parameter packing and the forward passes.

Pure functions: arrays and scalars in, results written into caller-owned buffers where
the caller gives them; no I/O, no globals.

Parameter layout. All weights and biases of one parameter set live in one flat float32
vector ``theta`` [P], layer by layer: ``layers.i.weight`` ([out, in], row-major, the
PyTorch/ONNX layout) followed by ``layers.i.bias`` ([out]). ``dims`` (int64 [L+1]) gives
the widths ``[in, hidden..., out]``. A flat vector makes "reset to the meta-learned
parameters" one copy and the SGD step one vector update, and ``param_views`` turns it
back into per-layer matrices without copying.

The network (docs/model-format.md): ``h = xn``; per layer ``h = h @ W.T + b``, ReLU
between layers, none after the last; the output is the normalised delta.

Two forwards, both numpy (OpenBLAS sgemm for the products):
- ``forward``: the plain one, for a few rows (the model loader's checks, the prediction
  guard's one row per tick, the live view);
- ``forward_blas``: planning's (N x H network evaluations per tick, onboard/rollout.py)
  into preallocated buffers, with each bias folded into its product: every input carries
  a constant 1 as its last column and every weight matrix the bias as its last row, so a
  layer is one sgemm and one ReLU pass (numpy's separate bias pass would cost about
  twice the ReLU's; docs/performance.md).
The adaptation step's products are in onboard/sgd_blas.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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


def forward(theta: np.ndarray, dims: np.ndarray, xn: np.ndarray) -> np.ndarray:
    """Normalised delta [n, out] float32 (a new array) for normalised inputs xn [n, in]."""
    ws, bs = param_views(theta, dims)
    h = np.asarray(xn, np.float32)
    last = len(ws) - 1
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(last + 1):
            h = np.matmul(h, ws[i].T)
            h += bs[i]
            if i < last:
                np.maximum(h, 0.0, out=h)
    return h


# ---------------------------------------------------------------------------------------
# The planning forward: biases folded into the products
# ---------------------------------------------------------------------------------------


def augment(weights_t: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per layer ``[W.T; b]`` ([in + 1, out] float32, C-contiguous): the weights of
    ``forward_blas``. weights_t: per layer W.T ([in, out]); biases: per layer [out]."""
    out = []
    for w, b in zip(weights_t, biases, strict=True):
        a = np.empty((w.shape[0] + 1, w.shape[1]), np.float32)
        a[:-1] = w
        a[-1] = b
        out.append(a)
    return out


def forward_buffers(dims: np.ndarray, rows: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``forward_blas``'s hidden buffers for ``rows`` rows ([rows, width + 1] float32, the
    last column 1) and its zeros (float32, as many as the largest hidden buffer)."""
    widths = [int(d) for d in dims[1:-1]]
    hidden = [np.ones((rows, w + 1), np.float32) for w in widths]
    return hidden, np.zeros(rows * (max(widths, default=0) + 1), np.float32)


def forward_blas(
    x: np.ndarray,
    weights: Sequence[np.ndarray],
    hidden_bufs: Sequence[np.ndarray],
    out: np.ndarray,
    zeros: np.ndarray,
) -> np.ndarray:
    """Batched forward with the biases folded into the products; returns ``out``.

    x: [N, in + 1] float32 whose last column is 1. weights: per layer [in + 1, out], the
    weights transposed with the bias as the last row (``augment``). hidden_bufs: per
    hidden layer [N, width + 1] float32 whose last column is 1 (the next product's bias
    input: the product writes the other columns and the ReLU keeps a 1 at 1); row slices
    of ``forward_buffers``' buffers serve as well. out: [N, out] float32. zeros: float32
    zeros, at least as many as the largest hidden buffer holds (numpy's maximum against
    an array runs several times faster than against the scalar 0).
    """
    h = x
    last = len(weights) - 1
    # Blown-up inputs overflow to inf/nan; the callers' guards (the planner's cost check,
    # the model's cross-check) handle the result, so the warnings are only noise.
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(last):
            dst = hidden_bufs[i]
            np.matmul(h, weights[i], out=dst[:, :-1])
            np.maximum(dst, zeros[: dst.size].reshape(dst.shape), out=dst)
            h = dst
        np.matmul(h, weights[last], out=out)
    return out
