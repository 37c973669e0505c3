"""Writes small random model files that follow docs/model-format.md, without PyTorch.

Importable from any test under tests/onboard/ (pytest puts this folder on sys.path
because tests/onboard/conftest.py lives here): ``from onboard_fixtures import
write_random_model``. Tests never depend on trained files.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from robot_contract.state import (
    ACTION_HIGH_REV_S,
    ACTION_LOW_REV_S,
    ACTION_NAMES,
    CONTROL_PERIOD_S,
    STATE_NAMES,
)

IO_DIM = 24


def random_model_arrays(
    hidden: Sequence[int] = (32, 32), seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, np.ndarray]]:
    """Random weights ([out, in] float32), biases ([out]) and normalisation ([24] each)."""
    rng = np.random.default_rng(seed)
    dims = [IO_DIM, *hidden, IO_DIM]
    weights, biases = [], []
    for n_in, n_out in itertools.pairwise(dims):
        weights.append(
            (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32)
        )
        biases.append((0.1 * rng.standard_normal(n_out)).astype(np.float32))
    norm = {
        "input_mean": rng.normal(0.0, 1.0, IO_DIM).astype(np.float32),
        "input_std": rng.uniform(0.5, 2.0, IO_DIM).astype(np.float32),
        "delta_mean": rng.normal(0.0, 0.05, IO_DIM).astype(np.float32),
        "delta_std": rng.uniform(0.01, 0.2, IO_DIM).astype(np.float32),
    }
    return weights, biases, norm


def default_metadata(hidden: Sequence[int]) -> dict[str, str]:
    """The metadata_props of a valid model with these hidden widths (all values strings)."""
    return {
        "roach.format_version": "1",
        "roach.algorithm": "grbal",
        "roach.state_names": ",".join(STATE_NAMES),
        "roach.action_names": ",".join(ACTION_NAMES),
        "roach.state_dim": "24",
        "roach.action_dim": "2",
        "roach.input_dim": "24",
        "roach.output_dim": "24",
        "roach.hidden": ",".join(str(h) for h in hidden),
        "roach.activation": "relu",
        "roach.M": "16",
        "roach.K": "16",
        "roach.inner_lr": "0.01",
        "roach.control_period_s": repr(CONTROL_PERIOD_S),
        "roach.action_low": f"{ACTION_LOW_REV_S},{ACTION_LOW_REV_S}",
        "roach.action_high": f"{ACTION_HIGH_REV_S},{ACTION_HIGH_REV_S}",
        "roach.training_data": json.dumps({"episodes": 0, "transitions": 0, "seed": 0}),
        "roach.train_config": json.dumps({"source": "random test fixture"}),
        "roach.code_version": "0.1.0+test",
        "roach.seed": "0",
    }


def build_model_proto(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    norm: Mapping[str, np.ndarray],
    metadata: Mapping[str, str],
) -> onnx.ModelProto:
    """The ONNX graph of docs/model-format.md for the given arrays and metadata."""
    inits = [
        numpy_helper.from_array(np.asarray(norm[k], np.float32), f"norm.{k}")
        for k in ("input_mean", "input_std", "delta_mean", "delta_std")
    ]
    nodes = [
        helper.make_node("Sub", ["x", "norm.input_mean"], ["xc"]),
        helper.make_node("Div", ["xc", "norm.input_std"], ["h_in"]),
    ]
    h = "h_in"
    n_layers = len(weights)
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits.append(numpy_helper.from_array(np.asarray(w, np.float32), f"layers.{i}.weight"))
        inits.append(numpy_helper.from_array(np.asarray(b, np.float32), f"layers.{i}.bias"))
        out = "delta_norm" if i == n_layers - 1 else f"z{i}"
        nodes.append(
            helper.make_node("Gemm", [h, f"layers.{i}.weight", f"layers.{i}.bias"], [out], transB=1)
        )
        if i < n_layers - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"]))
            h = f"h{i}"
    nodes.append(helper.make_node("Mul", ["delta_norm", "norm.delta_std"], ["ds"]))
    nodes.append(helper.make_node("Add", ["ds", "norm.delta_mean"], ["delta"]))
    out_dim = int(np.asarray(weights[-1]).shape[0])
    graph = helper.make_graph(
        nodes,
        "roach_dynamics",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", IO_DIM])],
        [
            helper.make_tensor_value_info("delta_norm", TensorProto.FLOAT, ["batch", out_dim]),
            helper.make_tensor_value_info("delta", TensorProto.FLOAT, ["batch", out_dim]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, dict(metadata))
    return model


def write_random_model(
    path: str | Path,
    *,
    hidden: Sequence[int] = (32, 32),
    seed: int = 0,
    metadata: Mapping[str, str | None] | None = None,
) -> Path:
    """Writes a valid random model to ``path`` and returns the path.

    ``metadata`` overrides individual keys of the default metadata; a value of None
    removes the key (to build invalid files for loader tests).
    """
    weights, biases, norm = random_model_arrays(hidden, seed)
    meta: dict[str, str] = default_metadata(hidden)
    for key, value in (metadata or {}).items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    model = build_model_proto(weights, biases, norm, meta)
    path = Path(path)
    onnx.save(model, str(path))
    return path
