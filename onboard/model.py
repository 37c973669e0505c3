"""Loading the exported dynamics model (docs/model-format.md) for the onboard kernels.

The file is read and checked by robot_contract.model_file (weights, normalisation,
metadata, the running code's state layout), then checked here against the controller's
configuration and cross-checked: onnxruntime's forward on a probe batch must match the
onboard kernels. Any problem is a ``ModelFileError`` with one line naming the file and
what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from onboard import kernels
from robot_contract.errors import ModelFileError
from robot_contract.model_file import (
    INPUT_NAME,
    OUTPUT_NORM_NAME,
    SANITY_PROBES,
    SANITY_TOL,
    ModelFile,
    ModelMeta,
    inference_bytes,
    read_model_file,
    sanity_record,
)
from robot_contract.state import (
    ACTION_DIM,
    ACTION_HIGH_REV_S,
    ACTION_LOW_REV_S,
    CONTROL_PERIOD_S,
)

CROSS_CHECK_TOL = 1e-4
"""Max abs difference (normalised delta units) allowed between onnxruntime and the kernels."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded dynamics model: the meta-learned parameters and the normalisation.

    weights[i]: [out, in] float32 C-contiguous (views into ``theta``); biases[i]: [out].
    input_mean/std: [24] (model input = state[2:] ++ action); delta_mean/std: [24].
    """

    meta: ModelMeta
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    input_mean: np.ndarray
    input_std: np.ndarray
    delta_mean: np.ndarray
    delta_std: np.ndarray
    path: str
    theta: np.ndarray
    """[P] float32: every weight and bias, flat (onboard/kernels.py layout). Read-only."""
    dims: np.ndarray
    """[L+1] int64: layer widths [in, hidden..., out]."""
    checksum: str | None = None
    """The file's verified SHA-256, or None if it carries none (exported before checksums)."""
    step_scale: np.ndarray | None = None
    """[P] float32, read-only: the file's per-parameter step scales in ``theta``'s layout
    (the step of parameter j is ``inner_lr * step_scale[j]``), or None: all 1."""

    def normalise_input(self, x: np.ndarray) -> np.ndarray:
        """Raw model input [n, 24] -> normalised float32 [n, 24]."""
        return ((np.asarray(x, np.float32) - self.input_mean) / self.input_std).astype(np.float32)

    def predict_delta_norm(self, x: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
        """Normalised delta [n, 24] for raw inputs x [n, 24] (the plain forward, for a few
        rows; planning uses onboard/rollout.py)."""
        th = self.theta if theta is None else theta
        return kernels.forward(th, self.dims, self.normalise_input(x))


def load_model(
    path: str | Path,
    *,
    action_low: np.ndarray | tuple[float, float] | None = None,
    action_high: np.ndarray | tuple[float, float] | None = None,
    control_period_s: float | None = None,
) -> LoadedModel:
    """Reads, validates and cross-checks a model file.

    action_low/high ([2], rev/s) and control_period_s (s) are the controller's configured
    values; None means the robot_contract.state defaults (2..9 rev/s, 0.1 s). The file's
    values must agree with them.
    """
    f = read_model_file(path)
    p, meta = f.path, f.meta
    low = np.asarray(ACTION_LOW_REV_S if action_low is None else action_low, np.float64)
    high = np.asarray(ACTION_HIGH_REV_S if action_high is None else action_high, np.float64)
    low, high = np.broadcast_to(low, (ACTION_DIM,)), np.broadcast_to(high, (ACTION_DIM,))
    period = CONTROL_PERIOD_S if control_period_s is None else float(control_period_s)
    if not (np.allclose(meta.action_low, low) and np.allclose(meta.action_high, high)):
        raise ModelFileError(
            f"model file {p}: action bounds {meta.action_low.tolist()}..{meta.action_high.tolist()}"
            f" rev/s differ from the configured {low.tolist()}..{high.tolist()}"
        )
    if not np.isclose(meta.control_period_s, period):
        raise ModelFileError(
            f"model file {p}: control period {meta.control_period_s} s differs from the "
            f"configured {period} s"
        )
    model = _assemble(meta, list(f.weights), list(f.biases), f.norm, str(p))
    _cross_check(f, model)
    _sanity_check(f, model, period)
    step_scale = None
    if f.step_weights is not None and f.step_biases is not None:
        step_scale = kernels.pack_params(list(f.step_weights), list(f.step_biases))
        step_scale.setflags(write=False)
    return replace(model, checksum=f.checksum, step_scale=step_scale)


def model_from_arrays(
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    norm: dict[str, np.ndarray],
    *,
    M: int = 16,
    inner_lr: float = 0.01,
    path: str = "<memory>",
) -> LoadedModel:
    """An in-memory model from arrays (benchmarks, tests); no file, no cross-check.

    weights[i]: [out, in]; biases[i]: [out]; norm: input_mean, input_std, delta_mean,
    delta_std, each [24].
    """
    meta = ModelMeta.for_running_code(
        algorithm="grbal",
        hidden=[int(w.shape[0]) for w in weights[:-1]],
        M=M,
        K=M,
        inner_lr=inner_lr,
        training_data={},
        train_config={},
        code_version="",
        seed=0,
    )
    meta = replace(meta, input_dim=int(weights[0].shape[1]), output_dim=int(weights[-1].shape[0]))
    return _assemble(meta, weights, biases, norm, path)


def _assemble(
    meta: ModelMeta,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    norm: dict[str, np.ndarray],
    path: str,
) -> LoadedModel:
    theta = kernels.pack_params(weights, biases)
    theta.setflags(write=False)  # the meta-learned parameters: every consumer copies
    dims = kernels.layer_dims(weights)
    w_views, b_views = kernels.param_views(theta, dims)
    norm = {k: np.ascontiguousarray(v, np.float32).copy() for k, v in norm.items()}
    for v in norm.values():
        v.setflags(write=False)
    return LoadedModel(
        meta=meta,
        weights=w_views,
        biases=b_views,
        input_mean=np.ascontiguousarray(norm["input_mean"], np.float32),
        input_std=np.ascontiguousarray(norm["input_std"], np.float32),
        delta_mean=np.ascontiguousarray(norm["delta_mean"], np.float32),
        delta_std=np.ascontiguousarray(norm["delta_std"], np.float32),
        path=path,
        theta=theta,
        dims=dims,
    )


def _cross_check(f: ModelFile, model: LoadedModel) -> None:
    """onnxruntime vs the plain and the planning forward on a probe batch around the data
    mean."""
    import onnxruntime as ort

    p = f.path
    try:
        sess = ort.InferenceSession(inference_bytes(f.proto), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelFileError(
            f"model file {p}: onnxruntime cannot run the graph: {str(exc).splitlines()[0]}"
        ) from None
    names = {o.name for o in sess.get_outputs()}
    if OUTPUT_NORM_NAME not in names or [i.name for i in sess.get_inputs()] != [INPUT_NAME]:
        raise ModelFileError(
            f"model file {p}: graph must have input {INPUT_NAME!r} and output "
            f"{OUTPUT_NORM_NAME!r} "
            f"(has {[i.name for i in sess.get_inputs()]} -> {sorted(names)})"
        )
    rng = np.random.default_rng(0)
    x = (model.input_mean + model.input_std * rng.standard_normal((64, 24))).astype(np.float32)
    try:
        (ref,) = sess.run([OUTPUT_NORM_NAME], {INPUT_NAME: x})
    except Exception as exc:
        raise ModelFileError(
            f"model file {p}: onnxruntime forward failed: {str(exc).splitlines()[0]}"
        ) from None
    ours = model.predict_delta_norm(x)
    xn = np.ones((64, int(model.dims[0]) + 1), np.float32)
    xn[:, :-1] = model.normalise_input(x)
    hidden, zeros = kernels.forward_buffers(model.dims, 64)
    out = np.empty((64, int(model.dims[-1])), np.float32)
    weights = kernels.augment([w.T for w in model.weights], model.biases)
    blas = kernels.forward_blas(xn, weights, hidden, out, zeros)
    err = max(float(np.max(np.abs(ours - ref))), float(np.max(np.abs(blas - ref))))
    if not err <= CROSS_CHECK_TOL:
        raise ModelFileError(
            f"model file {p}: the graph's output disagrees with its initializers "
            f"(max abs error {err:.3g} > {CROSS_CHECK_TOL:g} on a probe batch)"
        )


def _sanity_check(f: ModelFile, model: LoadedModel, period_s: float) -> None:
    """The model's predictions on its recorded probe inputs (drawn from the training
    distribution at export) must be the recorded ones, and physically possible (the
    default bounds of onboard.plausibility); a file without the record is probed around
    its normalisation mean."""
    from onboard.plausibility import Envelope, PlausibilityConfig

    record = sanity_record(f)
    if record is None:
        rng = np.random.default_rng(0)
        z = np.clip(rng.standard_normal((SANITY_PROBES, 24)), -2.0, 2.0)
        x = (model.input_mean + model.input_std * z).astype(np.float32)
    else:
        x = record[0]
    std = model.delta_std.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        delta = model.predict_delta_norm(x).astype(np.float64) * std + model.delta_mean
    if record is not None:
        err = float(np.max(np.abs(delta - record[1]) / std))
        if not err <= SANITY_TOL:
            raise ModelFileError(
                f"model file {f.path}: predictions on the recorded probe states differ from "
                f"those recorded at export by {err:.3g} delta_std (> {SANITY_TOL:g})"
            )
    envelope = Envelope(PlausibilityConfig(), False, 1.0, 1.0)
    for xi, di in zip(x, delta, strict=True):
        state = np.concatenate([[0.0, 0.0], xi[:22].astype(np.float64)])
        why = envelope.prediction_fault(state, di, period_s) if np.isfinite(di).all() else "NaN"
        if why:
            raise ModelFileError(
                f"model file {f.path}: implausible prediction on a training-distribution "
                f"state ({why}); the robot cannot do that"
            )
