"""ONNX export of a trained run, exactly per docs/model-format.md, and reading it back.

The graph is written node by node with ``onnx.helper`` (not traced), so the input,
output and initializer names are the contract's by construction:
``x`` [batch, 24] -> Sub/Div by ``norm.input_*`` -> Gemm(``layers.i.*``, transB) + Relu
... -> ``delta_norm`` -> Mul/Add by ``norm.delta_*`` -> ``delta``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from offboard_training.model import INPUT_DIM, OUTPUT_DIM, Normalizer, Params
from offboard_training.train import TrainedRun, load_run
from onboard.model import REQUIRED_KEYS
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

OPSET = 17
IR_VERSION = 8
"""The IR version onnx pairs with opset 17 (onnx.helper.VERSION_TABLE)."""
FORMAT_VERSION = "1"
TOLERANCE = 1e-5
"""Largest allowed |onnxruntime - PyTorch| on either output (state or normalised units)."""

METADATA_KEYS = REQUIRED_KEYS
"""Every ``roach.*`` key a model file carries; onboard.model owns the list (the reader)."""


def metadata_for(run: TrainedRun) -> dict[str, str]:
    """Every ``roach.*`` key of docs/model-format.md, as strings."""
    c = run.config
    return {
        "roach.format_version": FORMAT_VERSION,
        "roach.algorithm": c.algo,
        "roach.state_names": ",".join(STATE_NAMES),
        "roach.action_names": ",".join(ACTION_NAMES),
        "roach.state_dim": str(STATE_DIM),
        "roach.action_dim": str(ACTION_DIM),
        "roach.input_dim": str(INPUT_DIM),
        "roach.output_dim": str(OUTPUT_DIM),
        "roach.hidden": ",".join(str(h) for h in c.hidden),
        "roach.activation": "relu",
        "roach.M": str(c.M),
        "roach.K": str(c.K),
        "roach.inner_lr": repr(float(c.inner_lr)),
        "roach.control_period_s": repr(CONTROL_PERIOD_S),
        "roach.action_low": ",".join([repr(ACTION_LOW_REV_S)] * ACTION_DIM),
        "roach.action_high": ",".join([repr(ACTION_HIGH_REV_S)] * ACTION_DIM),
        "roach.training_data": json.dumps(run.data_summary, sort_keys=True),
        "roach.train_config": json.dumps(c.to_json(), sort_keys=True),
        "roach.code_version": run.code_version,
        "roach.seed": str(c.seed),
    }


def build_onnx(
    weights: dict[str, np.ndarray], norm: Normalizer, metadata: dict[str, str]
) -> onnx.ModelProto:
    """The model graph from ``layers.{i}.weight/bias`` arrays and the normaliser."""
    inits = [
        numpy_helper.from_array(np.asarray(v, dtype=np.float32), f"norm.{k}")
        for k, v in norm.as_dict().items()
    ]
    nodes = [
        helper.make_node("Sub", ["x", "norm.input_mean"], ["x_centered"]),
        helper.make_node("Div", ["x_centered", "norm.input_std"], ["x_norm"]),
    ]
    n = sum(1 for k in weights if k.endswith(".weight"))
    h = "x_norm"
    for i in range(n):
        w, b = f"layers.{i}.weight", f"layers.{i}.bias"
        inits.append(numpy_helper.from_array(np.asarray(weights[w], dtype=np.float32), w))
        inits.append(numpy_helper.from_array(np.asarray(weights[b], dtype=np.float32), b))
        out = "delta_norm" if i == n - 1 else f"layers.{i}.out"
        nodes.append(helper.make_node("Gemm", [h, w, b], [out], transB=1))
        if i < n - 1:
            nodes.append(helper.make_node("Relu", [out], [f"layers.{i}.relu"]))
            out = f"layers.{i}.relu"
        h = out
    nodes += [
        helper.make_node("Mul", ["delta_norm", "norm.delta_std"], ["delta_scaled"]),
        helper.make_node("Add", ["delta_scaled", "norm.delta_mean"], ["delta"]),
    ]
    graph = helper.make_graph(
        nodes,
        "roach_dynamics",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", INPUT_DIM])],
        [
            helper.make_tensor_value_info("delta_norm", TensorProto.FLOAT, ["batch", OUTPUT_DIM]),
            helper.make_tensor_value_info("delta", TensorProto.FLOAT, ["batch", OUTPUT_DIM]),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="roach-grbal offboard_training",
        doc_string="GrBAL/MB dynamics model; see docs/model-format.md",
    )
    helper.set_model_props(model, metadata)
    return model


@dataclass(frozen=True)
class ExportReport:
    path: Path
    bytes: int
    max_abs_diff: float
    """Largest |onnxruntime - PyTorch| over both outputs on the check batch."""


def export_run(run_dir: Path, out: Path, check_batch: int = 512) -> ExportReport:
    """Exports ``run_dir/model.pt`` to ``out``; checks it and compares with PyTorch."""
    run = load_run(run_dir)
    weights = {k: v.detach().numpy() for k, v in run.model.layer_params().items()}
    model = build_onnx(weights, run.norm, metadata_for(run))
    onnx.checker.check_model(model, full_check=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    # ---- the file must compute what PyTorch computes, before it is written
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((check_batch, INPUT_DIM))
    x = (run.norm.input_mean + run.norm.input_std * xn).astype(np.float32)
    diff = max_abs_diff_vs_torch(data, run, x)
    if not diff <= TOLERANCE:
        raise ModelFileError(f"{out}: onnxruntime differs from PyTorch by {diff:.3g} > {TOLERANCE}")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return ExportReport(out, len(data), diff)


def max_abs_diff_vs_torch(onnx_bytes: bytes, run: TrainedRun, x: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    ort_norm, ort_delta = sess.run(["delta_norm", "delta"], {"x": x})
    with torch.no_grad():
        t_norm, t_delta = run.model(torch.as_tensor(x))
    return float(
        max(np.abs(ort_norm - t_norm.numpy()).max(), np.abs(ort_delta - t_delta.numpy()).max())
    )


@dataclass(frozen=True)
class OnnxModel:
    """A model file read back for offboard evaluation (weights as float32 torch tensors)."""

    params: Params
    norm: Normalizer
    metadata: dict[str, str]

    @property
    def M(self) -> int:
        return int(self.metadata["roach.M"])

    @property
    def K(self) -> int:
        return int(self.metadata["roach.K"])

    @property
    def inner_lr(self) -> float:
        return float(self.metadata["roach.inner_lr"])


def read_onnx(path: Path) -> OnnxModel:
    """Reads weights, normaliser and metadata of a file written by ``export_run``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path}: not an ONNX file ({exc.__class__.__name__})") from None
    metadata = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in METADATA_KEYS if k not in metadata]
    if missing:
        raise ModelFileError(f"{path}: metadata keys missing: {missing}")
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    try:
        norm = Normalizer(
            *(arrays[f"norm.{k}"] for k in ("input_mean", "input_std", "delta_mean", "delta_std"))
        )
    except KeyError as exc:
        raise ModelFileError(f"{path}: initializer {exc} missing") from None
    params = {k: torch.as_tensor(v.copy()) for k, v in arrays.items() if k.startswith("layers.")}
    return OnnxModel(params, norm, metadata)
