"""Loading the exported dynamics model (docs/model-format.md) for the onboard kernels.

The ONNX file is read with the ``onnx`` package (weights, normalisation, metadata),
checked against the running code's state layout and the controller's configuration,
and cross-checked at load: onnxruntime's forward on a probe batch must match the
onboard kernels. Any problem is a ``ModelFileError`` with one line naming the file and
what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onboard import kernels
from robot_contract.errors import ModelFileError
from robot_contract.state import (
    ACTION_DIM,
    ACTION_HIGH_REV_S,
    ACTION_LOW_REV_S,
    CONTROL_PERIOD_S,
    STATE_DIM,
    STATE_NAMES,
)

REQUIRED_KEYS: tuple[str, ...] = (
    "roach.format_version",
    "roach.algorithm",
    "roach.state_names",
    "roach.action_names",
    "roach.state_dim",
    "roach.action_dim",
    "roach.input_dim",
    "roach.output_dim",
    "roach.hidden",
    "roach.activation",
    "roach.M",
    "roach.K",
    "roach.inner_lr",
    "roach.control_period_s",
    "roach.action_low",
    "roach.action_high",
    "roach.training_data",
    "roach.train_config",
    "roach.code_version",
    "roach.seed",
)
SUPPORTED_FORMAT_VERSIONS = ("1",)
CROSS_CHECK_TOL = 1e-4
"""Max abs difference (normalised delta units) allowed between onnxruntime and the kernels."""
_NORM_NAMES = ("input_mean", "input_std", "delta_mean", "delta_std")


@dataclass(frozen=True)
class ModelMeta:
    """The model's metadata (docs/model-format.md), parsed and checked."""

    algorithm: str
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    state_dim: int
    action_dim: int
    input_dim: int
    output_dim: int
    hidden: tuple[int, ...]
    M: int
    """Past window length (transitions) used in meta-training; the default adaptation window."""
    K: int
    inner_lr: float
    """Adaptation step size of the one SGD step."""
    control_period_s: float
    action_low: np.ndarray
    """[2] float64, rev/s."""
    action_high: np.ndarray
    """[2] float64, rev/s."""
    training_data: dict
    code_version: str
    seed: int


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

    def normalise_input(self, x: np.ndarray) -> np.ndarray:
        """Raw model input [n, 24] -> normalised float32 [n, 24]."""
        return ((np.asarray(x, np.float32) - self.input_mean) / self.input_std).astype(np.float32)

    def predict_delta_norm(self, x: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
        """Normalised delta [n, 24] for raw inputs x [n, 24] (Numba forward; not for the tick)."""
        th = self.theta if theta is None else theta
        xn = np.ascontiguousarray(self.normalise_input(x))
        out = np.empty((xn.shape[0], int(self.dims[-1])), np.float32)
        acts = np.empty(kernels.work_sizes(self.dims, xn.shape[0])[0], np.float32)
        kernels.forward_nb(th, self.dims, xn, out, acts)
        return out


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
    import onnx
    from onnx import numpy_helper

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file {p}: no such file")
    try:
        proto = onnx.load(str(p))
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for a damaged file
        raise ModelFileError(
            f"model file {p}: not a readable ONNX file (truncated or another format): "
            f"{type(exc).__name__}"
        ) from None
    if len(proto.graph.node) == 0:
        raise ModelFileError(f"model file {p}: not an ONNX model (empty graph)")
    props = {e.key: e.value for e in proto.metadata_props}
    missing = [k for k in REQUIRED_KEYS if k not in props]
    if missing:
        raise ModelFileError(f"model file {p}: missing metadata key(s) {', '.join(missing)}")
    meta = _parse_meta(p, props)
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

    inits = {t.name: t for t in proto.graph.initializer}
    arrays: dict[str, np.ndarray] = {}
    for name in _NORM_NAMES:
        key = f"norm.{name}"
        if key not in inits:
            raise ModelFileError(f"model file {p}: missing initializer {key}")
        a = np.ascontiguousarray(numpy_helper.to_array(inits[key]), dtype=np.float32)
        if a.shape != (STATE_DIM,):
            raise ModelFileError(f"model file {p}: {key} has shape {a.shape}, expected (24,)")
        arrays[name] = a
    if np.any(arrays["input_std"] <= 0) or np.any(arrays["delta_std"] <= 0):
        raise ModelFileError(f"model file {p}: normalisation std has values <= 0")
    n_layers = 0
    while f"layers.{n_layers}.weight" in inits:
        n_layers += 1
    if n_layers == 0:
        raise ModelFileError(f"model file {p}: no layers.0.weight initializer")
    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    for i in range(n_layers):
        w = numpy_helper.to_array(inits[f"layers.{i}.weight"]).astype(np.float32)
        if f"layers.{i}.bias" not in inits:
            raise ModelFileError(f"model file {p}: missing initializer layers.{i}.bias")
        b = numpy_helper.to_array(inits[f"layers.{i}.bias"]).astype(np.float32)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ModelFileError(
                f"model file {p}: layers.{i} weight {w.shape} / bias {b.shape} "
                "are not [out, in] / [out]"
            )
        weights.append(w)
        biases.append(b)
    _check_dims(p, meta, weights)
    for a in [*weights, *biases, *arrays.values()]:
        if not np.all(np.isfinite(a)):
            raise ModelFileError(f"model file {p}: non-finite values in the parameters")

    model = _assemble(meta, weights, biases, arrays, str(p))
    _cross_check(p, proto, model)
    return model


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
    hidden = tuple(int(w.shape[0]) for w in weights[:-1])
    meta = ModelMeta(
        algorithm="grbal",
        state_names=STATE_NAMES,
        action_names=("left_leg_rate_cmd", "right_leg_rate_cmd"),
        state_dim=STATE_DIM,
        action_dim=ACTION_DIM,
        input_dim=int(weights[0].shape[1]),
        output_dim=int(weights[-1].shape[0]),
        hidden=hidden,
        M=M,
        K=M,
        inner_lr=inner_lr,
        control_period_s=CONTROL_PERIOD_S,
        action_low=np.full(ACTION_DIM, ACTION_LOW_REV_S),
        action_high=np.full(ACTION_DIM, ACTION_HIGH_REV_S),
        training_data={},
        code_version="",
        seed=0,
    )
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


def _parse_meta(p: Path, props: dict[str, str]) -> ModelMeta:
    def fail(key: str, what: str) -> ModelFileError:
        return ModelFileError(f"model file {p}: metadata {key}={props[key]!r}: {what}")

    def as_int(key: str) -> int:
        try:
            return int(props[key])
        except ValueError:
            raise fail(key, "not an integer") from None

    def as_float(key: str) -> float:
        try:
            return float(props[key])
        except ValueError:
            raise fail(key, "not a number") from None

    def as_floats(key: str, n: int) -> np.ndarray:
        try:
            v = np.asarray([float(t) for t in props[key].split(",")], np.float64)
        except ValueError:
            raise fail(key, f"expected {n} comma-separated numbers") from None
        if v.shape != (n,):
            raise fail(key, f"expected {n} comma-separated numbers")
        return v

    if props["roach.format_version"] not in SUPPORTED_FORMAT_VERSIONS:
        raise fail("roach.format_version", f"supported: {', '.join(SUPPORTED_FORMAT_VERSIONS)}")
    state_names = tuple(t.strip() for t in props["roach.state_names"].split(","))
    if state_names != STATE_NAMES:
        raise fail("roach.state_names", "state layout differs from robot_contract.state")
    if props["roach.activation"] != "relu":
        raise fail("roach.activation", "only relu is supported")
    try:
        hidden = tuple(int(t) for t in props["roach.hidden"].split(",") if t.strip())
    except ValueError:
        raise fail("roach.hidden", "expected comma-separated integers") from None
    try:
        training_data = json.loads(props["roach.training_data"])
    except json.JSONDecodeError:
        raise fail("roach.training_data", "not JSON") from None
    meta = ModelMeta(
        algorithm=props["roach.algorithm"],
        state_names=state_names,
        action_names=tuple(t.strip() for t in props["roach.action_names"].split(",")),
        state_dim=as_int("roach.state_dim"),
        action_dim=as_int("roach.action_dim"),
        input_dim=as_int("roach.input_dim"),
        output_dim=as_int("roach.output_dim"),
        hidden=hidden,
        M=as_int("roach.M"),
        K=as_int("roach.K"),
        inner_lr=as_float("roach.inner_lr"),
        control_period_s=as_float("roach.control_period_s"),
        action_low=as_floats("roach.action_low", ACTION_DIM),
        action_high=as_floats("roach.action_high", ACTION_DIM),
        training_data=training_data if isinstance(training_data, dict) else {},
        code_version=props["roach.code_version"],
        seed=as_int("roach.seed"),
    )
    if meta.state_dim != STATE_DIM or meta.action_dim != ACTION_DIM:
        raise ModelFileError(
            f"model file {p}: state_dim/action_dim {meta.state_dim}/{meta.action_dim}, "
            f"expected {STATE_DIM}/{ACTION_DIM}"
        )
    expected_in = STATE_DIM - 2 + ACTION_DIM
    if meta.input_dim != expected_in or meta.output_dim != STATE_DIM:
        raise ModelFileError(
            f"model file {p}: input_dim/output_dim {meta.input_dim}/{meta.output_dim}, "
            f"expected {expected_in}/{STATE_DIM}"
        )
    if meta.M < 1 or not np.isfinite(meta.inner_lr) or meta.inner_lr < 0:
        raise ModelFileError(f"model file {p}: M must be >= 1 and inner_lr finite and >= 0")
    return meta


def _check_dims(p: Path, meta: ModelMeta, weights: list[np.ndarray]) -> None:
    shapes = [tuple(w.shape) for w in weights]
    widths = [meta.input_dim, *meta.hidden, meta.output_dim]
    expected = [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]
    if shapes != expected:
        raise ModelFileError(
            f"model file {p}: weight shapes {shapes} disagree with metadata "
            f"input_dim={meta.input_dim}, hidden={list(meta.hidden)}, output_dim={meta.output_dim}"
        )


def _cross_check(p: Path, proto: object, model: LoadedModel) -> None:
    """onnxruntime vs the Numba and BLAS forwards on a probe batch around the data mean."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(
            proto.SerializeToString(),  # type: ignore[attr-defined]
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:
        raise ModelFileError(
            f"model file {p}: onnxruntime cannot run the graph: {str(exc).splitlines()[0]}"
        ) from None
    names = {o.name for o in sess.get_outputs()}
    if "delta_norm" not in names or [i.name for i in sess.get_inputs()] != ["x"]:
        raise ModelFileError(
            f"model file {p}: graph must have input 'x' and output 'delta_norm' "
            f"(has {[i.name for i in sess.get_inputs()]} -> {sorted(names)})"
        )
    rng = np.random.default_rng(0)
    x = (model.input_mean + model.input_std * rng.standard_normal((64, 24))).astype(np.float32)
    try:
        (ref,) = sess.run(["delta_norm"], {"x": x})
    except Exception as exc:
        raise ModelFileError(
            f"model file {p}: onnxruntime forward failed: {str(exc).splitlines()[0]}"
        ) from None
    ours = model.predict_delta_norm(x)
    xn = model.normalise_input(x)
    bufs = [np.empty((64, int(h)), np.float32) for h in model.dims[1:-1]]
    blas = kernels.forward_blas(
        xn,
        [w.T for w in model.weights],
        model.biases,
        bufs,
        np.empty((64, int(model.dims[-1])), np.float32),
    )
    err = max(float(np.max(np.abs(ours - ref))), float(np.max(np.abs(blas - ref))))
    if not err <= CROSS_CHECK_TOL:
        raise ModelFileError(
            f"model file {p}: the graph's output disagrees with its initializers "
            f"(max abs error {err:.3g} > {CROSS_CHECK_TOL:g} on a probe batch)"
        )
