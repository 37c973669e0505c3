"""Binds the dynamics model to the planner: candidate actions -> predicted states -> cost.

``Rollout`` owns every buffer of the prediction (allocated once for N candidates and
horizon H). ``Rollout.bind(params, state, cost)`` returns the ``rollout_cost`` closure the
planner calls: for actions [N, H, 2] it predicts, for all candidates at once,
``s_{k+1} = s_k + delta(concat(s_k[2:], a_k))`` for k = 0..H-1, and scores the
trajectories [N, H+1, 24] with ``cost`` (a task's ``Task.cost``).

Speed. The prediction is 3 matrix products per step on [N, width] float32 blocks and runs
through numpy's matmul (OpenBLAS sgemm), each bias folded into its product
(onboard/kernels.py). Two exact rewrites cut the work per tick:
- the input and output normalisation are folded into the first and last layer once per
  bind (the raw state goes straight into the first product, and the last layer emits the
  delta in state units);
- when every candidate has the same first action (the command in flight,
  ``fix_first_action``), step 0 is computed once for one row and broadcast: the batched
  work is H - 1 steps, not H.
``workers`` can split the candidates over threads (see ``Rollout``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from onboard import kernels
from onboard.model import LoadedModel
from onboard.planner import RolloutCost
from robot_contract.state import MODEL_INPUT_STATE_SLICE

CostFn = Callable[[np.ndarray], np.ndarray]
"""predicted states [N, H+1, 24] -> costs [N]."""
_IN = MODEL_INPUT_STATE_SLICE
_N_STATE_IN = _IN.stop - _IN.start
"""The state's numbers the model sees (all but x and y): the first columns of a row."""


def fold_normalisation(
    model: LoadedModel, theta: np.ndarray, out: list[np.ndarray] | None = None
) -> list[np.ndarray]:
    """kernels.forward_blas's weights acting on raw rows: per layer the weights transposed
    with the bias as the last row ([in + 1, out] float32, C-contiguous).

    The first layer takes the raw row [state[2:], action, 1], unnormalised, and the last
    layer returns the delta in state units. Writes into ``out`` when given (preallocated,
    shapes as returned), else allocates.
    """
    ws, bs = kernels.param_views(theta, model.dims)
    n_layers = len(ws)
    if out is None:
        out = [np.empty((w.shape[1] + 1, w.shape[0]), np.float32) for w in ws]
    inv_std = 1.0 / model.input_std.astype(np.float64)
    w_first = ws[0].astype(np.float64) * inv_std
    b_first = bs[0].astype(np.float64) - w_first @ model.input_mean.astype(np.float64)
    dstd = model.delta_std.astype(np.float64)[:, None]
    if n_layers == 1:
        w_first = w_first * dstd
        b_first = b_first * dstd[:, 0] + model.delta_mean
    out[0][:-1] = w_first.T
    out[0][-1] = b_first
    for i in range(1, n_layers - 1):
        np.copyto(out[i][:-1], ws[i].T)  # contiguous [in, out]: faster sgemm than the view
        out[i][-1] = bs[i]
    if n_layers > 1:
        out[-1][:-1] = (ws[-1].astype(np.float64) * dstd).T
        out[-1][-1] = bs[-1].astype(np.float64) * dstd[:, 0] + model.delta_mean
    return out


class Rollout:
    """Preallocated batched prediction for up to ``n_candidates`` sequences of ``horizon``.

    workers > 1 splits the candidates into that many row blocks, each predicted over the
    whole horizon by its own thread (numpy releases the GIL in its loops and BLAS): one
    hand-off per call instead of one per matrix product as BLAS threading would do,
    which keeps the split useful on a machine whose cores are not all free. Use it with
    one BLAS thread (onboard.blas.set_blas_threads(1)).
    """

    def __init__(
        self, model: LoadedModel, n_candidates: int, horizon: int, *, workers: int = 1
    ) -> None:
        if workers < 1:
            raise ValueError(f"rollout workers={workers} must be >= 1")
        self.model = model
        self.n = n_candidates
        self.horizon = horizon
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, "rollout") if workers > 1 else None
        out_dim = int(model.dims[-1])
        self.states = np.empty((n_candidates, horizon + 1, 24), np.float32)
        """[N, H+1, 24] predicted states of the last call (index 0 = current state)."""
        n_in = int(model.dims[0])
        self._x = np.ones((n_candidates, n_in + 1), np.float32)  # last column: 1
        self._hidden, self._zeros = kernels.forward_buffers(model.dims, n_candidates)
        self._delta = np.empty((n_candidates, out_dim), np.float32)
        self._x1 = np.ones((1, n_in + 1), np.float32)
        self._hidden1, self._zeros1 = kernels.forward_buffers(model.dims, 1)
        self._delta1 = np.empty((1, out_dim), np.float32)
        self._weights = fold_normalisation(model, model.theta)
        self._warmup()

    def _warmup(self) -> None:
        """Runs both prediction paths once, so the first control tick is not the one that
        touches the buffers first."""
        a = np.full((min(2, self.n), self.horizon, 2), 5.0, np.float32)
        self.predict(self._weights, np.zeros(24, np.float32), a)
        a[-1, 0] = 6.0
        self.predict(self._weights, np.zeros(24, np.float32), a)

    def predict(
        self, weights: list[np.ndarray], state: np.ndarray, actions: np.ndarray
    ) -> np.ndarray:
        """Predicted states [N, H+1, 24] (a view of ``self.states``) for actions [N, H, 2];
        weights as ``fold_normalisation`` returns them."""
        n, h = actions.shape[0], actions.shape[1]
        if n > self.n or h != self.horizon:
            raise ValueError(
                f"actions {actions.shape} exceed the rollout's [{self.n}, {self.horizon}, 2]"
            )
        st = self.states[:n]
        st[:, 0, :] = state
        k0 = 0
        if np.all(actions[:, 0, :] == actions[0, 0, :]):
            self._x1[0, :_N_STATE_IN] = state[_IN]
            self._x1[0, _N_STATE_IN:-1] = actions[0, 0]
            kernels.forward_blas(self._x1, weights, self._hidden1, self._delta1, self._zeros1)
            np.add(st[:, 0, :], self._delta1, out=st[:, 1, :])
            k0 = 1
        if self._pool is None or n < 2 * self.workers:
            self._steps(weights, actions, k0, 0, n)
        else:
            edges = np.linspace(0, n, self.workers + 1).astype(int)
            jobs = [
                self._pool.submit(self._steps, weights, actions, k0, int(a), int(b))
                for a, b in itertools.pairwise(edges)
            ]
            for job in jobs:
                job.result()
        return st

    def _steps(
        self, weights: list[np.ndarray], actions: np.ndarray, k0: int, r0: int, r1: int
    ) -> None:
        """Steps k0..H-1 for candidate rows r0..r1-1 (their own slice of every buffer)."""
        st = self.states[r0:r1]
        x = self._x[r0:r1]
        hidden = [b[r0:r1] for b in self._hidden]
        delta = self._delta[r0:r1]
        for k in range(k0, self.horizon):
            x[:, :_N_STATE_IN] = st[:, k, _IN]
            x[:, _N_STATE_IN:-1] = actions[r0:r1, k, :]
            kernels.forward_blas(x, weights, hidden, delta, self._zeros)
            np.add(st[:, k, :], delta, out=st[:, k + 1, :])

    def close(self) -> None:
        """Stops the worker threads (if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def bind(self, params: np.ndarray, state: np.ndarray, cost: CostFn) -> RolloutCost:
        """The planner's ``rollout_cost``: actions [N, H, 2] -> cost(predicted states) [N].

        params: flat parameters [P] (e.g. ``Adapter.params``); state: current state [24].
        The folded weights live in this Rollout's buffers: the returned function is valid
        until the next ``bind`` (one bind per control tick).
        """
        weights = fold_normalisation(self.model, params, self._weights)
        s0 = np.asarray(state, np.float32).copy()

        def rollout_cost(actions: np.ndarray) -> np.ndarray:
            return cost(self.predict(weights, s0, actions))

        return rollout_cost
