"""The model file (docs/model-format.md): the one thing training hands to the robot.

This module owns the file's contract for both sides: the graph's input, output and
initializer names, the ``roach.*`` metadata keys and their encoding, the graph itself
(``build_model_proto``, numpy arrays in) and the strict reader (``read_model_file``).
The exporter writes through it and the onboard loader reads through it, so the two
cannot drift apart. Every problem with a file is a one-line ``ModelFileError`` naming
the file and what is wrong.

Reading checks the file against the running code's layout (robot_contract.state): state
names, dimensions, weight shapes. Checks against a controller's configuration (action
bounds, control period) and against the onboard kernels belong to onboard.model.
``onnx`` is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_contract.errors import ModelFileError
from robot_contract.state import (
    ACTION_DIM,
    ACTION_HIGH_REV_S,
    ACTION_LOW_REV_S,
    ACTION_NAMES,
    CONTROL_PERIOD_S,
    STATE_DIM,
    STATE_NAMES,
)

if TYPE_CHECKING:
    import onnx

FORMAT_VERSION = "1"
"""The version this code writes (``roach.format_version``)."""
SUPPORTED_FORMAT_VERSIONS: tuple[str, ...] = ("1",)
OPSET = 17
IR_VERSION = 8
"""The IR version onnx pairs with opset 17 (onnx.helper.VERSION_TABLE)."""

INPUT_NAME = "x"
"""Graph input [batch, 24]: raw model input, state[2:] followed by the action."""
OUTPUT_NORM_NAME = "delta_norm"
"""Graph output [batch, 24]: predicted state change, normalised units."""
OUTPUT_NAME = "delta"
"""Graph output [batch, 24]: ``delta_norm * delta_std + delta_mean``, state units."""
NORM_NAMES: tuple[str, ...] = ("input_mean", "input_std", "delta_mean", "delta_std")
"""Normalisation arrays, stored as initializers ``norm.<name>``, each [24]."""
MODEL_INPUT_DIM = STATE_DIM - 2 + ACTION_DIM
MODEL_OUTPUT_DIM = STATE_DIM
ACTIVATION = "relu"

METADATA_KEYS: tuple[str, ...] = (
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
"""Every key a model file must carry, in the order the exporter writes them."""

SANITY_KEY = "roach.sanity"
"""Optional (files exported before it load without it): JSON ``{"inputs": [[24]...],
"delta": [[24]...]}``, probe model inputs drawn from the training data's distribution and
the model's predicted change (state units) on each, recorded at export."""
CHECKSUM_KEY = "roach.sha256"
"""Optional, written last by ``stamp_model``: the SHA-256 of the file's bytes with this
value replaced by 64 ``0`` characters. A file that carries it is refused at load if a
single bit differs."""
_PLACEHOLDER = b"0" * 64
SANITY_PROBES = 16
SANITY_TOL = 1e-3
"""Max |predicted - recorded| change at load, in units of the model's ``delta_std``."""


def norm_initializer(name: str) -> str:
    """Initializer name of a normalisation array: ``input_mean`` -> ``norm.input_mean``."""
    return f"norm.{name}"


def weight_initializer(i: int) -> str:
    """Initializer name of layer i's weight [out, in]."""
    return f"layers.{i}.weight"


def bias_initializer(i: int) -> str:
    """Initializer name of layer i's bias [out]."""
    return f"layers.{i}.bias"


STEP_PREFIX = "step."
"""Optional per-parameter step scales: ``step.layers.{i}.weight`` / ``.bias``, one of each
parameter's shape, >= 0 (docs/model-format.md, "Adaptation step"). No node reads them."""


def step_initializer(param: str) -> str:
    """Initializer name of the step scales of parameter ``param`` (``layers.0.weight``)."""
    return STEP_PREFIX + param


@dataclass(frozen=True)
class ModelMeta:
    """The model's metadata (docs/model-format.md), typed."""

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
    train_config: dict
    code_version: str
    seed: int

    @classmethod
    def for_running_code(
        cls,
        *,
        algorithm: str,
        hidden: Sequence[int],
        M: int,
        K: int,
        inner_lr: float,
        training_data: Mapping[str, Any],
        train_config: Mapping[str, Any],
        code_version: str,
        seed: int,
    ) -> ModelMeta:
        """Metadata with the state layout, dimensions, action bounds and control period of
        robot_contract.state; the rest describes the training run."""
        return cls(
            algorithm=algorithm,
            state_names=STATE_NAMES,
            action_names=ACTION_NAMES,
            state_dim=STATE_DIM,
            action_dim=ACTION_DIM,
            input_dim=MODEL_INPUT_DIM,
            output_dim=MODEL_OUTPUT_DIM,
            hidden=tuple(int(h) for h in hidden),
            M=int(M),
            K=int(K),
            inner_lr=float(inner_lr),
            control_period_s=CONTROL_PERIOD_S,
            action_low=np.full(ACTION_DIM, ACTION_LOW_REV_S),
            action_high=np.full(ACTION_DIM, ACTION_HIGH_REV_S),
            training_data=dict(training_data),
            train_config=dict(train_config),
            code_version=code_version,
            seed=int(seed),
        )


def encode_metadata(meta: ModelMeta) -> dict[str, str]:
    """Every key of ``METADATA_KEYS``, in that order, as the strings a file stores."""

    def floats(v: np.ndarray) -> str:
        return ",".join(repr(float(t)) for t in v)

    return {
        "roach.format_version": FORMAT_VERSION,
        "roach.algorithm": meta.algorithm,
        "roach.state_names": ",".join(meta.state_names),
        "roach.action_names": ",".join(meta.action_names),
        "roach.state_dim": str(meta.state_dim),
        "roach.action_dim": str(meta.action_dim),
        "roach.input_dim": str(meta.input_dim),
        "roach.output_dim": str(meta.output_dim),
        "roach.hidden": ",".join(str(h) for h in meta.hidden),
        "roach.activation": ACTIVATION,
        "roach.M": str(meta.M),
        "roach.K": str(meta.K),
        "roach.inner_lr": repr(float(meta.inner_lr)),
        "roach.control_period_s": repr(float(meta.control_period_s)),
        "roach.action_low": floats(meta.action_low),
        "roach.action_high": floats(meta.action_high),
        "roach.training_data": json.dumps(meta.training_data, sort_keys=True),
        "roach.train_config": json.dumps(meta.train_config, sort_keys=True),
        "roach.code_version": meta.code_version,
        "roach.seed": str(meta.seed),
    }


def decode_metadata(props: Mapping[str, str], path: str | Path = "<memory>") -> ModelMeta:
    """Parses and checks the metadata strings of a file (``path`` names it in errors).

    Refuses a missing key, a value that does not parse, an unsupported format version or
    activation, and a layout or dimensions other than robot_contract.state's.
    """
    missing = [k for k in METADATA_KEYS if k not in props]
    if missing:
        raise ModelFileError(f"model file {path}: missing metadata key(s) {', '.join(missing)}")

    def fail(key: str, what: str) -> ModelFileError:
        return ModelFileError(f"model file {path}: metadata {key}={props[key]!r}: {what}")

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

    def as_json(key: str) -> Any:
        try:
            return json.loads(props[key])
        except json.JSONDecodeError:
            raise fail(key, "not JSON") from None

    if props["roach.format_version"] not in SUPPORTED_FORMAT_VERSIONS:
        raise fail("roach.format_version", f"supported: {', '.join(SUPPORTED_FORMAT_VERSIONS)}")
    state_names = tuple(t.strip() for t in props["roach.state_names"].split(","))
    if state_names != STATE_NAMES:
        raise fail("roach.state_names", "state layout differs from robot_contract.state")
    if props["roach.activation"] != ACTIVATION:
        raise fail("roach.activation", f"only {ACTIVATION} is supported")
    try:
        hidden = tuple(int(t) for t in props["roach.hidden"].split(",") if t.strip())
    except ValueError:
        raise fail("roach.hidden", "expected comma-separated integers") from None
    training_data = as_json("roach.training_data")
    train_config = as_json("roach.train_config")
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
        train_config=train_config if isinstance(train_config, dict) else {},
        code_version=props["roach.code_version"],
        seed=as_int("roach.seed"),
    )
    if meta.state_dim != STATE_DIM or meta.action_dim != ACTION_DIM:
        raise ModelFileError(
            f"model file {path}: state_dim/action_dim {meta.state_dim}/{meta.action_dim}, "
            f"expected {STATE_DIM}/{ACTION_DIM}"
        )
    if meta.input_dim != MODEL_INPUT_DIM or meta.output_dim != MODEL_OUTPUT_DIM:
        raise ModelFileError(
            f"model file {path}: input_dim/output_dim {meta.input_dim}/{meta.output_dim}, "
            f"expected {MODEL_INPUT_DIM}/{MODEL_OUTPUT_DIM}"
        )
    if meta.M < 1 or not np.isfinite(meta.inner_lr) or meta.inner_lr < 0:
        raise ModelFileError(f"model file {path}: M must be >= 1 and inner_lr finite and >= 0")
    return meta


def check_dims(
    meta: ModelMeta, weights: Sequence[np.ndarray], path: str | Path = "<memory>"
) -> None:
    """The weight shapes ([out, in] per layer) must be those the metadata's widths give."""
    shapes = [tuple(w.shape) for w in weights]
    widths = [meta.input_dim, *meta.hidden, meta.output_dim]
    expected = [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]
    if shapes != expected:
        raise ModelFileError(
            f"model file {path}: weight shapes {shapes} disagree with metadata "
            f"input_dim={meta.input_dim}, hidden={list(meta.hidden)}, output_dim={meta.output_dim}"
        )


def build_model_proto(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    norm: Mapping[str, np.ndarray],
    metadata: Mapping[str, str],
    *,
    producer_name: str = "",
    step_weights: Sequence[np.ndarray] | None = None,
    step_biases: Sequence[np.ndarray] | None = None,
) -> onnx.ModelProto:
    """The graph of docs/model-format.md, written node by node (not traced).

    weights[i]: [out, in]; biases[i]: [out]; norm: ``NORM_NAMES`` -> [24]; all stored as
    float32. ``x`` -> Sub/Div by ``norm.input_*`` -> Gemm(transB) + Relu ... ->
    ``delta_norm`` -> Mul/Add by ``norm.delta_*`` -> ``delta``. ``step_weights`` /
    ``step_biases`` (both or neither, shaped like weights / biases): per-parameter step
    scales, stored as the ``step.*`` initializers.
    """
    from onnx import TensorProto, helper, numpy_helper

    def init(a: np.ndarray, name: str) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)

    inits = [init(norm[k], norm_initializer(k)) for k in NORM_NAMES]
    mean_in, std_in, mean_d, std_d = (norm_initializer(k) for k in NORM_NAMES)
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, mean_in], ["x_centered"]),
        helper.make_node("Div", ["x_centered", std_in], ["x_norm"]),
    ]
    n = len(weights)
    h = "x_norm"
    for i in range(n):
        w, b = weight_initializer(i), bias_initializer(i)
        inits += [init(weights[i], w), init(biases[i], b)]
        out = OUTPUT_NORM_NAME if i == n - 1 else f"layers.{i}.out"
        nodes.append(helper.make_node("Gemm", [h, w, b], [out], transB=1))
        if i < n - 1:
            nodes.append(helper.make_node("Relu", [out], [f"layers.{i}.relu"]))
            out = f"layers.{i}.relu"
        h = out
    if (step_weights is None) != (step_biases is None):
        raise ValueError("step_weights and step_biases go together")
    if step_weights is not None and step_biases is not None:
        for i in range(n):
            inits.append(init(step_weights[i], step_initializer(weight_initializer(i))))
            inits.append(init(step_biases[i], step_initializer(bias_initializer(i))))
    nodes += [
        helper.make_node("Mul", [OUTPUT_NORM_NAME, std_d], ["delta_scaled"]),
        helper.make_node("Add", ["delta_scaled", mean_d], [OUTPUT_NAME]),
    ]
    n_in, n_out = int(np.shape(weights[0])[1]), int(np.shape(weights[-1])[0])
    graph = helper.make_graph(
        nodes,
        "roach_dynamics",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", n_in])],
        [
            helper.make_tensor_value_info(OUTPUT_NORM_NAME, TensorProto.FLOAT, ["batch", n_out]),
            helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", n_out]),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name=producer_name,
        doc_string="GrBAL/MB dynamics model; see docs/model-format.md",
    )
    helper.set_model_props(model, dict(metadata))
    return model


def inference_bytes(proto: onnx.ModelProto) -> bytes:
    """The serialized graph without the ``step.*`` initializers no node reads (what an
    onnxruntime session is given, so it has nothing to prune and warn about)."""
    if not any(t.name.startswith(STEP_PREFIX) for t in proto.graph.initializer):
        return proto.SerializeToString()
    from onnx import ModelProto

    copy = ModelProto()
    copy.CopyFrom(proto)
    kept = [t for t in copy.graph.initializer if not t.name.startswith(STEP_PREFIX)]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    return copy.SerializeToString()


@dataclass(frozen=True)
class ModelFile:
    """A model file read and checked: metadata, weights and normalisation as numpy.

    weights[i]: [out, in] float32; biases[i]: [out] float32; the normalisation arrays [24]
    float32 (model input = state[2:] ++ action; delta = change of the 24-number state).
    """

    path: Path
    meta: ModelMeta
    metadata: dict[str, str]
    """Every ``metadata_props`` entry, as stored."""
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    input_mean: np.ndarray
    input_std: np.ndarray
    delta_mean: np.ndarray
    delta_std: np.ndarray
    proto: onnx.ModelProto
    """The parsed file (for running the graph itself, e.g. with onnxruntime)."""
    checksum: str | None = None
    """The verified SHA-256 (``CHECKSUM_KEY``), or None: the file carries none."""
    step_weights: tuple[np.ndarray, ...] | None = None
    """Per-parameter step scales of the weights (shapes of ``weights``), or None: every
    parameter steps by ``meta.inner_lr`` (scale 1)."""
    step_biases: tuple[np.ndarray, ...] | None = None
    """The same for the biases; None exactly when ``step_weights`` is."""

    @property
    def norm(self) -> dict[str, np.ndarray]:
        """``NORM_NAMES`` -> its [24] array."""
        return {k: getattr(self, k) for k in NORM_NAMES}


def reference_delta(f: ModelFile, x: np.ndarray) -> np.ndarray:
    """The graph's function in float64 numpy: raw inputs [n, 24] -> change [n, 24]."""
    h = (np.asarray(x, np.float64) - f.input_mean) / f.input_std.astype(np.float64)
    for i, (w, b) in enumerate(zip(f.weights, f.biases, strict=True)):
        h = h @ w.T.astype(np.float64) + b
        if i < len(f.weights) - 1:
            h = np.maximum(h, 0.0)
    return np.asarray(h * f.delta_std + f.delta_mean, np.float64)


def _entry(value: bytes) -> bytes:
    """The serialised metadata entry of the checksum (protobuf StringStringEntryProto)."""
    key = CHECKSUM_KEY.encode()
    return b"\x0a" + bytes((len(key),)) + key + b"\x12" + bytes((len(value),)) + value


def stamp_model(proto: onnx.ModelProto, seed: int = 0) -> bytes:
    """The bytes to write for ``proto``: with the sanity probes (``SANITY_KEY``) recorded
    and the checksum (``CHECKSUM_KEY``) last. Idempotent on weights: an existing stamp is
    replaced, nothing else changes."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    keep = [
        (e.key, e.value) for e in model.metadata_props if e.key not in (SANITY_KEY, CHECKSUM_KEY)
    ]
    del model.metadata_props[:]
    for k, v in keep:
        model.metadata_props.add(key=k, value=v)
    f = check_model_proto(model, "<export>")
    rng = np.random.default_rng(seed)
    z = np.clip(rng.standard_normal((SANITY_PROBES, MODEL_INPUT_DIM)), -2.0, 2.0)
    x = (f.input_mean.astype(np.float64) + f.input_std * z).astype(np.float32)
    record = {
        "inputs": [[float(v) for v in row] for row in x],
        "delta": [[float(v) for v in row] for row in reference_delta(f, x)],
    }
    model.metadata_props.add(key=SANITY_KEY, value=json.dumps(record))
    return with_checksum(model)


def with_checksum(proto: onnx.ModelProto) -> bytes:
    """The bytes of ``proto`` with ``CHECKSUM_KEY`` (re)written last, nothing else changed."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    keep = [(e.key, e.value) for e in model.metadata_props if e.key != CHECKSUM_KEY]
    del model.metadata_props[:]
    for k, v in keep:
        model.metadata_props.add(key=k, value=v)
    model.metadata_props.add(key=CHECKSUM_KEY, value=_PLACEHOLDER.decode())
    data = model.SerializeToString()
    if data.count(_entry(_PLACEHOLDER)) != 1:
        raise ModelFileError("model file: cannot place the checksum (placeholder not unique)")
    digest = hashlib.sha256(data).hexdigest().encode()
    return data.replace(_entry(_PLACEHOLDER), _entry(digest))


def verify_checksum(data: bytes, props: Mapping[str, str], path: str | Path) -> bool:
    """True if the file carries a checksum and ``data`` matches it; False if it carries
    none; ModelFileError if it does not match."""
    stored = props.get(CHECKSUM_KEY)
    if stored is None:
        return False
    value = stored.encode()
    if len(value) != 64 or data.count(_entry(value)) != 1:
        raise ModelFileError(f"model file {path}: damaged checksum entry {CHECKSUM_KEY}")
    actual = hashlib.sha256(data.replace(_entry(value), _entry(_PLACEHOLDER))).hexdigest()
    if actual != stored:
        raise ModelFileError(
            f"model file {path}: SHA-256 {actual[:12]}... differs from the recorded "
            f"{stored[:12]}...: the file was changed or damaged after export"
        )
    return True


def sanity_record(f: ModelFile) -> tuple[np.ndarray, np.ndarray] | None:
    """The recorded probe inputs [n, 24] and changes [n, 24], or None if the file has none;
    ModelFileError if the record does not parse."""
    text = f.metadata.get(SANITY_KEY)
    if text is None:
        return None
    try:
        raw = json.loads(text)
        x = np.asarray(raw["inputs"], np.float32)
        d = np.asarray(raw["delta"], np.float64)
    except (ValueError, KeyError, TypeError):
        raise ModelFileError(f"model file {f.path}: metadata {SANITY_KEY} does not parse") from None
    if x.ndim != 2 or x.shape[1] != MODEL_INPUT_DIM or d.shape != (x.shape[0], MODEL_OUTPUT_DIM):
        raise ModelFileError(f"model file {f.path}: metadata {SANITY_KEY} has wrong shapes")
    if not (np.isfinite(x).all() and np.isfinite(d).all()):
        raise ModelFileError(f"model file {f.path}: metadata {SANITY_KEY} is not finite")
    return x, d


def read_model_file(path: str | Path) -> ModelFile:
    """Reads a model file and checks it against docs/model-format.md and robot_contract.state.

    Refuses (ModelFileError, one line naming the file): a missing file, bytes that are not
    ONNX or are truncated, an empty graph, other input/output names, any metadata problem
    (``decode_metadata``), a missing, non-float32 or misshapen initializer, a std <= 0,
    weight shapes other than the metadata's widths, and non-finite parameters.
    """
    import onnx

    p = Path(path)
    if p.is_dir():
        raise ModelFileError(f"model file {p}: is a directory, not a file")
    if not p.is_file():
        raise ModelFileError(f"model file {p}: no such file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"model file {p}: cannot read ({exc.strerror or exc})") from None
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for a damaged file
        raise ModelFileError(
            f"model file {p}: not a readable ONNX file (truncated or another format): "
            f"{type(exc).__name__}"
        ) from None
    props = {e.key: e.value for e in proto.metadata_props}
    verified = verify_checksum(data, props, p) if len(proto.graph.node) else False
    f = check_model_proto(proto, p)
    return dataclasses.replace(f, checksum=props[CHECKSUM_KEY] if verified else None)


def check_model_proto(proto: onnx.ModelProto, path: str | Path) -> ModelFile:
    """The checks of ``read_model_file`` on a parsed graph (``path`` names it in errors)."""
    from onnx import TensorProto, numpy_helper

    p = Path(path)
    if len(proto.graph.node) == 0:
        raise ModelFileError(f"model file {p}: not an ONNX model (empty graph)")
    props = {e.key: e.value for e in proto.metadata_props}
    meta = decode_metadata(props, p)

    inits = {t.name: t for t in proto.graph.initializer}
    inputs = [i.name for i in proto.graph.input if i.name not in inits]
    outputs = [o.name for o in proto.graph.output]
    if inputs != [INPUT_NAME] or not {OUTPUT_NORM_NAME, OUTPUT_NAME} <= set(outputs):
        raise ModelFileError(
            f"model file {p}: graph must have input {INPUT_NAME!r} and outputs "
            f"{OUTPUT_NORM_NAME!r}, {OUTPUT_NAME!r} (has {inputs} -> {outputs})"
        )

    def array(name: str) -> np.ndarray:
        if name not in inits:
            raise ModelFileError(f"model file {p}: missing initializer {name}")
        if inits[name].data_type != TensorProto.FLOAT:
            raise ModelFileError(f"model file {p}: initializer {name} is not float32")
        return np.ascontiguousarray(numpy_helper.to_array(inits[name]), dtype=np.float32)

    norm: dict[str, np.ndarray] = {}
    for k in NORM_NAMES:
        a = array(norm_initializer(k))
        if a.shape != (STATE_DIM,):
            raise ModelFileError(
                f"model file {p}: {norm_initializer(k)} has shape {a.shape}, "
                f"expected ({STATE_DIM},)"
            )
        norm[k] = a
    if np.any(norm["input_std"] <= 0) or np.any(norm["delta_std"] <= 0):
        raise ModelFileError(f"model file {p}: normalisation std has values <= 0")
    n_layers = 0
    while weight_initializer(n_layers) in inits:
        n_layers += 1
    if n_layers == 0:
        raise ModelFileError(f"model file {p}: no {weight_initializer(0)} initializer")
    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    for i in range(n_layers):
        w, b = array(weight_initializer(i)), array(bias_initializer(i))
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ModelFileError(
                f"model file {p}: layers.{i} weight {w.shape} / bias {b.shape} "
                "are not [out, in] / [out]"
            )
        weights.append(w)
        biases.append(b)
    check_dims(meta, weights, p)
    for a in [*weights, *biases, *norm.values()]:
        if not np.all(np.isfinite(a)):
            raise ModelFileError(f"model file {p}: non-finite values in the parameters")
    step_weights, step_biases = _step_scales(inits, weights, biases, array, p)
    return ModelFile(
        path=p,
        meta=meta,
        metadata=props,
        weights=tuple(weights),
        biases=tuple(biases),
        proto=proto,
        input_mean=norm["input_mean"],
        input_std=norm["input_std"],
        delta_mean=norm["delta_mean"],
        delta_std=norm["delta_std"],
        step_weights=step_weights,
        step_biases=step_biases,
    )


def _step_scales(
    inits: Mapping[str, Any],
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    array: Any,
    p: Path,
) -> tuple[tuple[np.ndarray, ...] | None, tuple[np.ndarray, ...] | None]:
    """The ``step.*`` initializers, checked: none, or one per parameter, of its shape,
    finite and >= 0."""
    names = [weight_initializer(i) for i in range(len(weights))]
    names += [bias_initializer(i) for i in range(len(biases))]
    expected = {step_initializer(n) for n in names}
    present = {k for k in inits if k.startswith(STEP_PREFIX)}
    if not present:
        return None, None
    if present != expected:
        odd = sorted(present - expected) or sorted(expected - present)
        raise ModelFileError(
            f"model file {p}: step scales must be given for every weight and bias or none "
            f"({'unexpected' if present - expected else 'missing'} {odd[0]})"
        )
    scales: list[np.ndarray] = []
    for name, param in zip(names, [*weights, *biases]):
        a = array(step_initializer(name))
        if a.shape != param.shape:
            raise ModelFileError(
                f"model file {p}: {step_initializer(name)} has shape {a.shape}, "
                f"expected {param.shape} (that of {name})"
            )
        if not (np.all(np.isfinite(a)) and np.all(a >= 0)):
            raise ModelFileError(
                f"model file {p}: {step_initializer(name)} has values that are negative "
                "or not finite"
            )
        scales.append(a)
    n = len(weights)
    return tuple(scales[:n]), tuple(scales[n:])
