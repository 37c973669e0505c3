"""The dynamics model: normalisation, a ReLU MLP, and the one-step adaptation, functionally.

Shapes: ``x`` [N, 24] raw model input (``state[2:]`` + action), ``xn`` the same normalised;
``yn`` [N, 24] normalised state delta. ``params`` is a dict of the MLP's weights and biases
named ``layers.{i}.weight`` [out, in] and ``layers.{i}.bias`` [out], exactly the ONNX
initializer names of docs/model-format.md. The functions here do no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad

from robot_contract.state import STATE_DIM

INPUT_DIM = 24
OUTPUT_DIM = STATE_DIM

Params = dict[str, torch.Tensor]
Step = float | Params
"""An adaptation step size: one number for every parameter, or one tensor per parameter
(its shape; a step meta-learned per parameter, Meta-SGD)."""


@dataclass(frozen=True)
class Normalizer:
    """Mean and (floored) std of inputs and deltas, float64 arrays of shape [24]."""

    input_mean: np.ndarray
    input_std: np.ndarray
    delta_mean: np.ndarray
    delta_std: np.ndarray

    @classmethod
    def fit(
        cls,
        inputs: np.ndarray,
        deltas: np.ndarray,
        input_floor: float | np.ndarray,
        delta_floor: float,
    ) -> Normalizer:
        """Computed once, over the training split only: ``inputs``/``deltas`` [N, 24];
        ``input_floor`` a scalar or one floor per input [24]."""
        return cls(
            inputs.mean(axis=0),
            np.maximum(inputs.std(axis=0), input_floor),
            deltas.mean(axis=0),
            np.maximum(deltas.std(axis=0), delta_floor),
        )

    def norm_inputs(self, x: np.ndarray) -> np.ndarray:
        return (x - self.input_mean) / self.input_std

    def norm_deltas(self, d: np.ndarray) -> np.ndarray:
        return (d - self.delta_mean) / self.delta_std

    def as_dict(self) -> dict[str, np.ndarray]:
        return {
            "input_mean": self.input_mean,
            "input_std": self.input_std,
            "delta_mean": self.delta_mean,
            "delta_std": self.delta_std,
        }


class _NormBuffers(nn.Module):
    input_mean: torch.Tensor
    input_std: torch.Tensor
    delta_mean: torch.Tensor
    delta_std: torch.Tensor

    def __init__(self, norm: Normalizer) -> None:
        super().__init__()
        for name, value in norm.as_dict().items():
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32))


class DynamicsNet(nn.Module):
    """``x`` [N, 24] raw -> (``delta_norm`` [N, 24], ``delta`` [N, 24]).

    State-dict names are those of the ONNX file: ``norm.*`` buffers and ``layers.{i}.*``.
    """

    def __init__(self, hidden: Sequence[int], norm: Normalizer) -> None:
        super().__init__()
        widths = [INPUT_DIM, *hidden, OUTPUT_DIM]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.norm = _NormBuffers(norm)

    def layer_params(self) -> Params:
        """The trainable (and adaptable) parameters, by ONNX initializer name."""
        return {f"layers.{k}": v for k, v in self.layers.named_parameters()}

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.norm.input_mean) / self.norm.input_std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        yn = mlp(self.layer_params(), self.normalize(x))
        return yn, yn * self.norm.delta_std + self.norm.delta_mean


def n_layers(params: Params) -> int:
    return sum(1 for k in params if k.endswith(".weight"))


def mlp(params: Params, xn: torch.Tensor) -> torch.Tensor:
    """Normalised input [..., 24] -> normalised delta [..., 24]; ReLU between layers."""
    h = xn
    last = n_layers(params) - 1
    for i in range(last + 1):
        h = h @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"]
        if i < last:
            h = torch.relu(h)
    return h


def mse(params: Params, xn: torch.Tensor, yn: torch.Tensor) -> torch.Tensor:
    """Mean over all N x 24 elements of the squared normalised error (a scalar)."""
    return ((mlp(params, xn) - yn) ** 2).mean()


def adapt(params: Params, xn_past: torch.Tensor, yn_past: torch.Tensor, inner_lr: Step) -> Params:
    """One SGD step on ``mse`` over the M past transitions (docs/model-format.md).

    ``xn_past``/``yn_past`` [M, 24]; ``inner_lr`` one step size or one per parameter.
    Differentiable w.r.t. ``params`` and a per-parameter step (second order), so it serves
    both the meta-training loss and evaluation.
    """
    g = grad(mse)(params, xn_past, yn_past)
    if isinstance(inner_lr, dict):
        return {k: v - inner_lr[k] * g[k] for k, v in params.items()}
    return {k: v - inner_lr * g[k] for k, v in params.items()}


def adapted_future_loss(
    params: Params,
    xn_past: torch.Tensor,
    yn_past: torch.Tensor,
    xn_future: torch.Tensor,
    yn_future: torch.Tensor,
    inner_lr: Step,
) -> torch.Tensor:
    """GrBAL task loss: MSE on the K future transitions after adapting on the M past."""
    return mse(adapt(params, xn_past, yn_past, inner_lr), xn_future, yn_future)


def kept_steps_future_loss(
    params: Params, xn: torch.Tensor, yn: torch.Tensor, M: int, K: int, inner_lr: Step
) -> torch.Tensor:
    """The meta-loss of steps kept from tick to tick: ``xn``/``yn`` [S - 1 + M + K, 24]
    hold S ticks' windows. Step s (0-based) adapts step s - 1's weights on transitions
    s .. s + M - 1 and is scored on the K after them; the loss is the mean over the S
    scores. S = 1 is ``adapted_future_loss``."""
    steps = xn.shape[0] - M - K + 1
    total = xn.new_zeros(())
    for s in range(steps):
        params = adapt(params, xn[s : s + M], yn[s : s + M], inner_lr)
        total = total + mse(params, xn[s + M : s + M + K], yn[s + M : s + M + K])
    return total / steps


def module_forward(model: DynamicsNet, x: torch.Tensor) -> torch.Tensor:
    """``delta_norm`` of ``model`` through ``functional_call`` (used for cross-checks)."""
    out = functional_call(model, dict(model.named_parameters()), (x,))
    return out[0]


def parameter_count(hidden: Sequence[int]) -> int:
    widths = [INPUT_DIM, *hidden, OUTPUT_DIM]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def planning_flops(hidden: Sequence[int], candidates: int = 1000, horizon: int = 5) -> int:
    """Multiply-add FLOPs (2 per MAC) of one planning step: candidates x horizon forwards."""
    widths = [INPUT_DIM, *hidden, OUTPUT_DIM]
    macs = sum(a * b for a, b in itertools.pairwise(widths))
    return 2 * macs * candidates * horizon
