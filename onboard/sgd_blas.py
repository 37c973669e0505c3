"""The adaptation step's forward, loss, backward and SGD update through numpy's BLAS.

docs/model-format.md's loss (MSE over the n x out normalised delta errors) and one step
``theta - lr * scale * grad`` (``scale`` the model file's per-parameter step scales, or
1), written as a few matrix products per layer on the M-row window:
every product is an sgemm ([n, in] @ [in, out] forward, [out, n] @ [n, in] for the
weight gradient, [n, out] @ [out, in] back through the layer), which OpenBLAS runs near
its peak even at M = 16..32 rows; measured faster than scalar loop kernels compiled with
Numba for the shipped 2x128 model and several times faster at 2x500 (docs/performance.md).
Results agree with PyTorch's autograd to float32 rounding
(tests/onboard/numerics/test_numerics_oracle.py); run and replay both use this code, so
``roach replay --check`` re-derives the same commands.

Every buffer is allocated once for up to ``max_rows`` rows; a call allocates no arrays
(views of its own buffers only). The parameter sets it reads and writes are registered
up front (``views``) so their per-layer views are built once.
"""

from __future__ import annotations

import numpy as np

from onboard import kernels

_Views = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]


class BlasSgd:
    """Preallocated forward / loss / SGD step of one network shape on <= ``max_rows`` rows.

    dims: [L+1] widths ``[in, hidden..., out]``; parameter vectors are flat float32 [P]
    in the onboard/kernels.py layout. scale: [P] per-parameter step scales, or None (1).
    """

    def __init__(self, dims: np.ndarray, max_rows: int, scale: np.ndarray | None = None) -> None:
        self.dims = [int(d) for d in dims]
        self.max_rows = int(max_rows)
        self.scale = None if scale is None else np.ascontiguousarray(scale, np.float32)
        m, widths = self.max_rows, self.dims[1:-1]
        self._acts = [np.empty((m, w), np.float32) for w in widths]
        self._mask = [np.empty((m, w), np.bool_) for w in widths]
        self._out = np.empty((m, self.dims[-1]), np.float32)
        self._g = [np.empty((m, w), np.float32) for w in self.dims[1:]]
        self._sq = np.empty((m, self.dims[-1]), np.float64)
        self._views: dict[int, tuple[np.ndarray, _Views]] = {}

    def views(self, theta: np.ndarray) -> _Views:
        """Per-layer (weights [out, in], biases [out]) views of ``theta``, cached by identity
        (register every parameter buffer once, outside the tick)."""
        got = self._views.get(id(theta))
        if got is not None and got[0] is theta:
            return got[1]
        views = kernels.param_views(theta, np.asarray(self.dims))
        if len(self._views) < 8:  # the adapter's few sets; anything else is not kept alive
            self._views[id(theta)] = (theta, views)
        return views

    def forward(self, theta: np.ndarray, xn: np.ndarray) -> np.ndarray:
        """Normalised delta [n, out] (a view of an internal buffer) for inputs xn [n, in]."""
        ws, bs = self.views(theta)
        n = xn.shape[0]
        h = xn
        last = len(ws) - 1
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(last + 1):
                dst = self._out[:n] if i == last else self._acts[i][:n]
                np.matmul(h, ws[i].T, out=dst)
                dst += bs[i]
                if i < last:
                    np.maximum(dst, 0.0, out=dst)
                h = dst
        return h

    def loss(self, theta: np.ndarray, xn: np.ndarray, tn: np.ndarray) -> float:
        """Mean of the n x out squared errors of ``forward(theta, xn)`` against tn (float64)."""
        out = self.forward(theta, xn)
        return self._mse(out, tn)

    def _mse(self, out: np.ndarray, tn: np.ndarray) -> float:
        n = tn.shape[0]
        d = self._g[-1][:n]
        with np.errstate(over="ignore", invalid="ignore"):
            np.subtract(out, tn, out=d)
            sq = self._sq[:n]
            np.multiply(d, d, out=sq, dtype=np.float64)
        return float(sq.sum()) / d.size

    def sgd_step(
        self,
        theta: np.ndarray,
        xn: np.ndarray,
        tn: np.ndarray,
        lr: float,
        theta_out: np.ndarray,
        grad: np.ndarray,
    ) -> tuple[float, float]:
        """``theta_out = theta - lr * scale * dL/dtheta``; returns (loss before, loss after).

        xn [n, in], tn [n, out] with n <= max_rows; grad [P] receives the gradient;
        theta_out [P] may not alias theta.
        """
        ws, _ = self.views(theta)
        gws, gbs = self.views(grad)
        n = xn.shape[0]
        n_layers = len(ws)
        out = self.forward(theta, xn)
        loss_before = self._mse(out, tn)  # leaves out - tn in self._g[-1]
        g = self._g[-1][:n]
        with np.errstate(over="ignore", invalid="ignore"):
            g *= np.float32(2.0 / g.size)
            for i in range(n_layers - 1, -1, -1):
                src = xn if i == 0 else self._acts[i - 1][:n]
                np.matmul(g.T, src, out=gws[i])
                np.sum(g, axis=0, out=gbs[i])
                if i > 0:
                    nxt = self._g[i - 1][:n]
                    np.matmul(g, ws[i], out=nxt)
                    mask = self._mask[i - 1][:n]
                    np.greater(src, 0.0, out=mask)
                    np.multiply(nxt, mask, out=nxt)
                    g = nxt
            if self.scale is None:
                np.multiply(grad, np.float32(-lr), out=theta_out)
            else:
                np.multiply(grad, self.scale, out=theta_out)
                theta_out *= np.float32(-lr)
            theta_out += theta
        return loss_before, self.loss(theta_out, xn, tn)
