"""Writes small random model files that follow docs/model-format.md, without PyTorch.

The graph comes from robot_contract.model_file (the exporter's own builder); the
metadata is spelled out here, key by key, as the format document gives it.

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

from robot_contract import model_file
from robot_contract.errors import ModelFileError
from robot_contract.model_file import stamp_model
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
    return model_file.build_model_proto(weights, biases, norm, metadata, producer_name="tests")


def write_random_model(
    path: str | Path,
    *,
    hidden: Sequence[int] = (32, 32),
    seed: int = 0,
    metadata: Mapping[str, str | None] | None = None,
    stamp: bool = True,
) -> Path:
    """Writes a valid random model to ``path`` and returns the path.

    ``metadata`` overrides individual keys of the default metadata; a value of None
    removes the key (to build invalid files for loader tests). ``stamp``: with the probe
    record and checksum the exporter writes (robot_contract.model_file.stamp_model), as
    long as the file is valid enough to stamp; False: as files exported before them.
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
    try:
        data = stamp_model(model) if stamp else model.SerializeToString()
    except ModelFileError:  # an invalid file for a loader test: written as built
        data = model.SerializeToString()
    path.write_bytes(data)
    return path
