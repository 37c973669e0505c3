"""Online adaptation of the dynamics model: one SGD step on the latest M transitions.

Modes (docs/robot.md, "GrBAL as published"):
  ``grbal``    reset to the meta-learned parameters every step, then one step (GrBAL).
  ``dyn-eval`` keep the adapted parameters and keep stepping from them (MB + dynamic
               evaluation; with the GrBAL model, the default of ``roach run``: the
               meta-learned start with its steps kept, measured best in
               docs/evaluation.md).
  ``none``     never adapt (MB); the window loss is still reported.

The loss is docs/model-format.md's: MSE over the n x 24 normalised delta errors; a model
file with per-parameter step scales (a step meta-learned with ``roach train
--learn-step``) steps each parameter by ``inner_lr`` times its scale.

Change rule: when each of the newest ``change_rows`` transitions is predicted more than
``change_ratio`` times worse (squared error, normalised) than the older rest of the window
on average, the world has changed inside the window: from then on the step uses only the
transitions since the change (the window grows back to M one tick at a time) and takes
``change_gain`` times the step size until it is whole again. One surprising transition
(a slip, a bump) does not trip it; a motor losing torque does, two to three ticks after
the onset (docs/evaluation.md, "The change rule"). ``change_ratio`` 0 turns it off.

Guard: if the step's loss is not finite, or the adapted parameters predict the window
worse than the meta-learned ones, this step uses the meta-learned parameters and the
fallback is counted. In ``dyn-eval`` a fallback also restarts the running parameters
from the meta-learned ones (the running set has drifted somewhere worse than the start).

The step's products run through numpy's BLAS (onboard/sgd_blas.py). All buffers are
allocated once in ``__init__``; ``adapt`` allocates no arrays, only a few scalars and
the views of its input window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from onboard.model import LoadedModel
from onboard.sgd_blas import BlasSgd
from robot_contract.errors import ConfigError

MODES: tuple[str, ...] = ("grbal", "dyn-eval", "none")

CHANGE_RATIO = 3.0
"""Default ``change_ratio``: on the training terrains the least-surprising of three
successive transitions is above 2.8 times the window's mean error in under 1 tick of 100."""
CHANGE_ROWS = 3
"""Default ``change_rows``; the rule needs a window of at least 2 x rows + 2 transitions."""
CHANGE_GAIN = 3.0

DYN_EVAL_LR = 0.05
"""The ``dyn-eval`` step size when none is given. Steps add up from tick to tick, so it is
smaller than a GrBAL model's one-step size (0.15 for the shipped one); tuned for MB on
the training terrains, and the step the GrBAL model was measured best with
(docs/evaluation.md)."""


@dataclass
class AdaptResult:
    """What one call of ``Adapter.adapt`` did (for the log)."""

    loss_before: float
    """Window loss of the parameters the step started from (nan if the window is empty)."""
    loss_after: float
    """Window loss of the parameters now in use (``params``) (nan if the window is empty)."""
    stepped: bool
    """True if a gradient step was taken and kept."""
    fallback: bool
    """True if the guard rejected the step and the meta-learned parameters are in use."""
    fallbacks_total: int
    window: int = 0
    """Transitions the step used (fewer than M after a detected change)."""
    change: bool = False
    """True if the change rule tripped on this tick."""


class Adapter:
    """Holds the meta-learned and the current parameter sets and takes the adaptation step.

    model: the loaded model. mode: one of MODES. M: window length in transitions
    (default the model's ``roach.M``). inner_lr: step size (default: the model's
    ``roach.inner_lr`` in ``grbal`` and ``none``, ``DYN_EVAL_LR`` in ``dyn-eval``).
    change_ratio, change_rows, change_gain: the change rule (module docstring).
    """

    def __init__(
        self,
        model: LoadedModel,
        mode: str,
        *,
        M: int | None = None,
        inner_lr: float | None = None,
        change_ratio: float = CHANGE_RATIO,
        change_rows: int = CHANGE_ROWS,
        change_gain: float = CHANGE_GAIN,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"adaptation mode {mode!r} is not valid; valid: {', '.join(MODES)}")
        m = model.meta.M if M is None else int(M)
        if not 1 <= m <= 1000:
            raise ConfigError(f"adaptation window M={m} is not valid; must be 1 to 1000")
        if inner_lr is None:
            lr = DYN_EVAL_LR if mode == "dyn-eval" else model.meta.inner_lr
        else:
            lr = float(inner_lr)
        if not (math.isfinite(lr) and lr >= 0.0):
            raise ConfigError(f"adaptation inner_lr={lr} is not valid; must be finite and >= 0")
        if not (math.isfinite(change_ratio) and change_ratio >= 0.0):
            raise ConfigError(f"adaptation change_ratio={change_ratio} is not valid; must be >= 0")
        if not 1 <= int(change_rows) <= 499:
            raise ConfigError(
                f"adaptation change_rows={change_rows} is not valid; must be 1 to 499"
            )
        if not (math.isfinite(change_gain) and change_gain >= 0.0):
            raise ConfigError(f"adaptation change_gain={change_gain} is not valid; must be >= 0")
        self.change_ratio, self.change_rows = float(change_ratio), int(change_rows)
        self.change_gain = float(change_gain)
        self._since = 0
        """Transitions since the change the rule last detected, while the window still
        reaches back before it; 0 otherwise."""
        self.model = model
        self.mode = mode
        self.M = m
        self.inner_lr = lr
        self.fallbacks_total = 0
        dims = model.dims
        p = model.theta.shape[0]
        self._meta = np.ascontiguousarray(model.theta, dtype=np.float32).copy()
        self._meta.setflags(write=False)
        # Two parameter sets alternate in dyn-eval so a step never reads what it writes.
        self._sets = (np.empty(p, np.float32), np.empty(p, np.float32))
        self._cur = 0
        self._sets[0][:] = self._meta
        self._params: np.ndarray = self._meta
        self._grad = np.empty(p, np.float32)
        self._sgd = BlasSgd(dims, m, model.step_scale)
        for theta in (self._meta, *self._sets, self._grad):
            self._sgd.views(theta)  # registered once: the tick builds no per-layer views
        self._xn = np.empty((m, int(dims[0])), np.float32)
        self._tn = np.empty((m, int(dims[-1])), np.float32)
        # float64 scratch: normalise in double precision, then round once into xn, tn.
        self._x64 = np.empty((m, int(dims[0])), np.float64)
        self._t64 = np.empty((m, int(dims[-1])), np.float64)
        self._in_mean = model.input_mean.astype(np.float64)
        self._in_std = model.input_std.astype(np.float64)
        self._d_mean = model.delta_mean.astype(np.float64)
        self._d_std = model.delta_std.astype(np.float64)
        self._warmup()

    def _warmup(self) -> None:
        """Runs the step once on scratch buffers so the first control tick pays for no
        first touch of memory."""
        xn, tn = self._xn[:1], self._tn[:1]
        xn[:] = 0.0
        tn[:] = 0.0
        scratch = self._sets[1 - self._cur]
        self._sgd.sgd_step(self._meta, xn, tn, 0.0, scratch, self._grad)

    @property
    def params(self) -> np.ndarray:
        """The parameter set to plan with: flat float32 [P] (onboard/kernels.py layout).

        Read-only by contract; valid until the next ``adapt`` or ``reset``.
        """
        return self._params

    @property
    def meta_params(self) -> np.ndarray:
        """The meta-learned parameters, flat float32 [P], read-only."""
        return self._meta

    def reset(self) -> None:
        """Back to the meta-learned parameters (start of an episode); keeps the counter."""
        self._sets[0][:] = self._meta
        self._cur = 0
        self._params = self._meta
        self._since = 0

    def window_loss(self, states: np.ndarray, actions: np.ndarray, theta: np.ndarray) -> float:
        """Loss of parameters ``theta`` on a window (shapes as in ``adapt``); nan if empty."""
        n = self._fill(states, actions)
        if n == 0:
            return math.nan
        return self._sgd.loss(np.ascontiguousarray(theta, np.float32), self._xn[:n], self._tn[:n])

    def adapt(self, states: np.ndarray, actions: np.ndarray) -> AdaptResult:
        """One adaptation step on the latest transitions.

        states: [n+1, 24] consecutive states (any float dtype); actions: [n, 2] the
        commands applied between them (rev/s). Only the latest min(n, M) transitions are
        used; n == 0 takes no step.
        """
        n = self._fill(states, actions)
        if n == 0:
            if self.mode == "grbal":
                self._params = self._meta
            return AdaptResult(math.nan, math.nan, False, False, self.fallbacks_total)
        xn, tn = self._xn[:n], self._tn[:n]
        if self.mode == "none":
            loss = self._sgd.loss(self._meta, xn, tn)
            self._params = self._meta
            return AdaptResult(loss, loss, False, False, self.fallbacks_total, n)

        change = self._detect_change(xn, tn)
        lr = self.inner_lr
        if self._since:
            xn, tn = xn[-self._since :], tn[-self._since :]
            lr *= self.change_gain
        start = self._meta if self.mode == "grbal" else self._params
        dst = self._sets[1 - self._cur] if start is self._sets[self._cur] else self._sets[self._cur]
        loss_before, loss_after = self._sgd.sgd_step(start, xn, tn, lr, dst, self._grad)
        if start is self._meta:
            loss_meta = loss_before
        else:
            loss_meta = self._sgd.loss(self._meta, xn, tn)
        if not (math.isfinite(loss_after) and loss_after <= loss_meta):
            self.fallbacks_total += 1
            self._params = self._meta
            return AdaptResult(
                loss_before, loss_meta, False, True, self.fallbacks_total, xn.shape[0], change
            )
        self._cur = 0 if dst is self._sets[0] else 1
        self._params = dst
        return AdaptResult(
            loss_before, loss_after, True, False, self.fallbacks_total, xn.shape[0], change
        )

    def _detect_change(self, xn: np.ndarray, tn: np.ndarray) -> bool:
        """Advances the change rule by one tick on the window's rows; True if it trips."""
        n, k = xn.shape[0], self.change_rows
        if self._since:
            self._since += 1
            if self._since >= n:
                self._since = 0  # the window holds only post-change transitions again
        if self.change_ratio <= 0.0 or n < 2 * k + 2 or 0 < self._since <= 2 * k:
            return False
        older = self._sgd.loss(self._params, xn[:-k], tn[:-k])
        newest = math.inf
        for i in range(n - k, n):
            newest = min(newest, self._sgd.loss(self._params, xn[i : i + 1], tn[i : i + 1]))
        if not newest > self.change_ratio * older:
            return False
        self._since = k
        return True

    def _fill(self, states: np.ndarray, actions: np.ndarray) -> int:
        """Writes the normalised inputs/targets of the latest min(n, M) transitions; returns n."""
        states = np.asarray(states)
        actions = np.asarray(actions)
        n = actions.shape[0]
        if states.ndim != 2 or states.shape[0] != n + 1 or states.shape[1] != 24:
            raise ValueError(f"states must be [n+1, 24] for n={n} actions, got {states.shape}")
        if actions.ndim != 2 or actions.shape[1] != 2:
            raise ValueError(f"actions must be [n, 2], got {actions.shape}")
        n = min(n, self.M)
        if n == 0:
            return 0
        s0 = states[-n - 1 : -1]
        s1 = states[-n:]
        a = actions[-n:]
        x, t = self._x64[:n], self._t64[:n]
        np.subtract(s0[:, 2:], self._in_mean[:22], out=x[:, :22])
        np.subtract(a, self._in_mean[22:], out=x[:, 22:])
        np.divide(x, self._in_std, out=x)
        np.subtract(s1, s0, out=t)
        np.subtract(t, self._d_mean, out=t)
        np.divide(t, self._d_std, out=t)
        self._xn[:n] = x
        self._tn[:n] = t
        return n
