"""K-step prediction error before and after the one adaptation step, over windows.

For each window of ``M`` past + ``K`` future consecutive transitions of one episode:
``before`` = normalised MSE of the model on the K future transitions with its own
weights; ``after`` = the same with the weights after one SGD step (``inner_lr``) on the
M past transitions. Both are means over K x 24 elements, then over windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import vmap

from offboard_training.model import Params, Step, adapted_future_loss, mse
from offboard_training.windows import Transitions


@dataclass(frozen=True)
class WindowErrors:
    before: float
    """Mean normalised MSE on the future K without adapting."""
    after: float
    """Mean normalised MSE on the future K after one step on the past M."""
    windows: int
    before_se: float = float("nan")
    """Standard error of ``before`` over windows."""
    after_se: float = float("nan")
    """Standard error of ``after`` over windows."""
    improved: float = float("nan")
    """Share of windows whose error the step lowered."""
    before_w: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    """Per-window errors without the step [W] (for paired comparisons)."""
    after_w: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    """Per-window errors after the step [W]."""

    def to_json(self) -> dict:
        return {
            "before": self.before,
            "after": self.after,
            "windows": self.windows,
            "before_se": self.before_se,
            "after_se": self.after_se,
            "improved": self.improved,
        }


def window_errors(
    params: Params,
    data: Transitions,
    M: int,
    K: int,
    inner_lr: float,
    stride: int | None = None,
    chunk: int = 256,
) -> WindowErrors:
    """Errors over every window with the given ``stride`` (default ``K``) of ``data``."""
    starts = data.window_starts(M + K, stride or K)
    return errors_at(params, data, starts, M, K, inner_lr, chunk)


def errors_at(
    params: Params,
    data: Transitions,
    starts: np.ndarray,
    M: int,
    K: int,
    inner_lr: Step,
    chunk: int = 256,
) -> WindowErrors:
    """Errors over the windows starting at ``starts`` [W] (global transition indices)."""
    if len(starts) == 0:
        return WindowErrors(float("nan"), float("nan"), 0)
    detached = {k: v.detach() for k, v in params.items()}
    before_fn = vmap(mse, in_dims=(None, 0, 0))
    after_fn = vmap(adapted_future_loss, in_dims=(None, 0, 0, 0, 0, None))
    before, after = [], []
    with torch.no_grad():
        for i in range(0, len(starts), chunk):
            xp, yp, xf, yf = data.gather(starts[i : i + chunk], M, K)
            before.append(before_fn(detached, xf, yf).numpy())
            after.append(after_fn(detached, xp, yp, xf, yf, inner_lr).numpy())
    b, a = np.concatenate(before).astype(np.float64), np.concatenate(after).astype(np.float64)
    n = len(starts)
    return WindowErrors(
        float(b.mean()), float(a.mean()), n, _se(b), _se(a), float(np.mean(a < b)), b, a
    )


def paired(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> tuple[float, float]:
    """Mean of ``x - y`` over the same windows [W], and its standard error.

    With ``groups`` [W] (e.g. the episode of each window) the error is over group means,
    because overlapping windows of one episode are not independent samples.
    """
    d = np.asarray(x) - np.asarray(y)
    if groups is None:
        return float(d.mean()), _se(d)
    means = np.array([d[groups == g].mean() for g in np.unique(groups)])
    return float(d.mean()), _se(means)


def _se(v: np.ndarray) -> float:
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def transition_mse(params: Params, data: Transitions, chunk: int = 8192) -> float:
    """Plain one-step normalised MSE over all transitions of ``data``."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, data.n, chunk):
            total += float(mse(params, data.xn[i : i + chunk], data.yn[i : i + chunk])) * len(
                data.xn[i : i + chunk]
            )
    return total / max(data.n, 1)
