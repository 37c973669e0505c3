"""The model loader accepts a valid file and rejects each kind of bad file in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onboard_fixtures import build_model_proto, default_metadata, random_model_arrays

from onboard.model import load_model
from robot_contract.errors import ModelFileError
from robot_contract.state import STATE_NAMES


def _one_line_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(path, **kwargs)  # type: ignore[arg-type]
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_valid_model_loads_with_metadata_and_layout(random_model_path: Path) -> None:
    """A valid file loads: metadata parsed, weights [out, in] C-contiguous, theta is read-only."""
    m = load_model(random_model_path)
    assert m.meta.state_names == STATE_NAMES and m.meta.hidden == (32, 32)
    assert [w.shape for w in m.weights] == [(32, 24), (32, 32), (24, 32)]
    assert all(w.flags.c_contiguous and w.dtype == np.float32 for w in m.weights)
    assert m.meta.M == 16 and m.meta.inner_lr == pytest.approx(0.01)
    assert not m.theta.flags.writeable


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    """A path that does not exist is a ModelFileError naming it."""
    assert "no such file" in _one_line_error(tmp_path / "absent.onnx")


def test_not_onnx_is_rejected(tmp_path: Path) -> None:
    """A text file is not ONNX."""
    p = tmp_path / "notes.onnx"
    p.write_text("this is not a model\n" * 20)
    _one_line_error(p)


def test_truncated_file_is_rejected(random_model_path: Path) -> None:
    """A file cut in half is rejected."""
    data = random_model_path.read_bytes()
    random_model_path.write_bytes(data[: len(data) // 2])
    _one_line_error(random_model_path)


@pytest.mark.parametrize("key", ["roach.state_names", "roach.inner_lr", "roach.hidden"])
def test_missing_metadata_key_is_rejected(tmp_path: Path, key: str) -> None:
    """A file lacking a required metadata key names the key."""
    from onboard_fixtures import write_random_model

    p = write_random_model(tmp_path / "m.onnx", metadata={key: None})
    assert key in _one_line_error(p)


def test_wrong_state_layout_is_rejected(tmp_path: Path) -> None:
    """State names in another order than robot_contract.state are refused."""
    from onboard_fixtures import write_random_model

    names = list(STATE_NAMES)
    names[3], names[4] = names[4], names[3]
    p = write_random_model(tmp_path / "m.onnx", metadata={"roach.state_names": ",".join(names)})
    assert "state layout" in _one_line_error(p)


def test_dims_inconsistent_with_weights_are_rejected(tmp_path: Path) -> None:
    """Metadata hidden widths that disagree with the weight shapes are refused."""
    from onboard_fixtures import write_random_model

    p = write_random_model(tmp_path / "m.onnx", metadata={"roach.hidden": "64,64"})
    assert "weight shapes" in _one_line_error(p)


def test_wrong_weight_shape_is_rejected(tmp_path: Path) -> None:
    """A first layer that takes 20 inputs instead of 24 is refused."""
    weights, biases, norm = random_model_arrays((32, 32), seed=0)
    weights[0] = weights[0][:, :20]
    proto = build_model_proto(weights, biases, norm, default_metadata((32, 32)))
    p = tmp_path / "m.onnx"
    onnx.save(proto, str(p))
    _one_line_error(p)


def test_action_bound_mismatch_is_rejected(tmp_path: Path, random_model_path: Path) -> None:
    """Bounds 2..9 rev/s against a configured 2..8 are refused; so is a period mismatch."""
    assert "action bounds" in _one_line_error(random_model_path, action_high=(8.0, 8.0))
    assert "control period" in _one_line_error(random_model_path, control_period_s=0.05)
    load_model(random_model_path, action_low=(2.0, 2.0), action_high=(9.0, 9.0))


def test_graph_disagreeing_with_initializers_is_rejected(tmp_path: Path) -> None:
    """A graph whose output does not follow its initializers fails the onnxruntime cross-check."""
    weights, biases, norm = random_model_arrays((32, 32), seed=0)
    proto = build_model_proto(weights, biases, norm, default_metadata((32, 32)))
    # Point the second Gemm at a tampered copy of its weight: the initializer the loader
    # reads is unchanged, the graph computes something else.
    tampered = onnx.numpy_helper.from_array(weights[1] * 1.5, "tampered")
    proto.graph.initializer.append(tampered)
    for node in proto.graph.node:
        if node.op_type == "Gemm" and node.input[1] == "layers.1.weight":
            node.input[1] = "tampered"
    p = tmp_path / "m.onnx"
    onnx.save(proto, str(p))
    assert "disagrees" in _one_line_error(p)
