"""The model-file contract: metadata encoding round trip, the graph, and the reader's refusals."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from robot_contract.errors import ModelFileError
from robot_contract.model_file import (
    METADATA_KEYS,
    NORM_NAMES,
    ModelMeta,
    build_model_proto,
    check_dims,
    decode_metadata,
    encode_metadata,
    read_model_file,
)
from robot_contract.state import STATE_NAMES

HIDDEN = (16, 12)

Arrays = tuple[list[np.ndarray], list[np.ndarray], dict[str, np.ndarray]]


def _meta(hidden: tuple[int, ...] = HIDDEN) -> ModelMeta:
    return ModelMeta.for_running_code(
        algorithm="grbal",
        hidden=hidden,
        M=16,
        K=8,
        inner_lr=0.05,
        training_data={"episodes": 3, "terrains": {"carpet": 3}},
        train_config={"seed": 4, "hidden": list(hidden)},
        code_version="0.1.0+test",
        seed=4,
    )


def _arrays(hidden: tuple[int, ...] = HIDDEN, seed: int = 0) -> Arrays:
    rng = np.random.default_rng(seed)
    widths = [24, *hidden, 24]
    weights = [
        (rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
        for i, o in itertools.pairwise(widths)
    ]
    biases = [(0.1 * rng.standard_normal(o)).astype(np.float32) for o in widths[1:]]
    norm = {k: rng.uniform(0.5, 2.0, 24).astype(np.float32) for k in NORM_NAMES}
    return weights, biases, norm


def _write(
    path: Path,
    metadata: dict[str, str | None] | None = None,
    edit: Callable[[Arrays], None] | None = None,
) -> Path:
    """A model file; ``metadata`` overrides keys (None removes one), ``edit`` the arrays."""
    arrays = _arrays()
    if edit is not None:
        edit(arrays)
    props: dict[str, str] = encode_metadata(_meta())
    for key, value in (metadata or {}).items():
        if value is None:
            del props[key]
        else:
            props[key] = value
    onnx.save(build_model_proto(*arrays, props), str(path))
    return path


def _refused(path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        read_model_file(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


def _assert_same_meta(a: ModelMeta, b: ModelMeta) -> None:
    for f in dataclasses.fields(ModelMeta):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y, f.name


def test_metadata_round_trip() -> None:
    """decode(encode(meta)) gives back every field; encoding that again gives the same strings."""
    meta = _meta()
    props = encode_metadata(meta)
    back = decode_metadata(props)
    _assert_same_meta(meta, back)
    assert encode_metadata(back) == props


def test_encoding_writes_every_key_as_documented() -> None:
    """The encoder writes METADATA_KEYS in order, with the spellings of docs/model-format.md."""
    props = encode_metadata(_meta())
    assert tuple(props) == METADATA_KEYS
    assert props["roach.state_names"].split(",") == list(STATE_NAMES)
    assert props["roach.action_low"] == "2.0,2.0" and props["roach.action_high"] == "9.0,9.0"
    assert props["roach.hidden"] == "16,12" and props["roach.activation"] == "relu"
    assert props["roach.control_period_s"] == "0.1" and props["roach.inner_lr"] == "0.05"


def test_valid_file_reads_back_its_arrays(tmp_path: Path) -> None:
    """A valid file gives back its float32 weights, biases, normalisation and metadata."""
    weights, biases, norm = _arrays()
    f = read_model_file(_write(tmp_path / "m.onnx"))
    assert f.meta.hidden == HIDDEN and f.meta.M == 16 and f.meta.K == 8
    assert f.metadata == encode_metadata(_meta())
    for got, want in zip([*f.weights, *f.biases], [*weights, *biases], strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    for k in NORM_NAMES:
        np.testing.assert_array_equal(f.norm[k], norm[k])


def test_graph_computes_the_documented_network(tmp_path: Path) -> None:
    """onnxruntime on the built graph is the ReLU MLP on normalised x; delta = dn*std + mean."""
    ort = pytest.importorskip("onnxruntime")
    weights, biases, norm = _arrays()
    path = _write(tmp_path / "m.onnx")
    x = np.random.default_rng(1).standard_normal((5, 24)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dn, d = sess.run(["delta_norm", "delta"], {"x": x})
    h = (x - norm["input_mean"]) / norm["input_std"]
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w.T + b
        h = np.maximum(h, 0) if i < len(weights) - 1 else h
    np.testing.assert_allclose(dn, h, atol=1e-5)
    np.testing.assert_allclose(d, dn * norm["delta_std"] + norm["delta_mean"], atol=1e-6)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """A path that does not exist is refused as 'no such file'."""
    assert "no such file" in _refused(tmp_path / "absent.onnx")


@pytest.mark.parametrize("content", [b"this is not a model\n" * 20, bytes(range(256)) * 4])
def test_corrupt_bytes_are_refused(tmp_path: Path, content: bytes) -> None:
    """Text or random bytes are not a model file."""
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    _refused(path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    """A valid file cut in half is refused."""
    path = _write(tmp_path / "m.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _refused(path)


@pytest.mark.parametrize("key", ["roach.format_version", "roach.M", "roach.train_config"])
def test_missing_key_is_refused(tmp_path: Path, key: str) -> None:
    """A file lacking a metadata key is refused with the key's name."""
    assert key in _refused(_write(tmp_path / "m.onnx", {key: None}))


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("roach.format_version", "2", "supported: 1"),
        ("roach.M", "sixteen", "not an integer"),
        ("roach.M", "0", "M must be >= 1"),
        ("roach.inner_lr", "nan", "inner_lr finite"),
        ("roach.action_low", "2.0", "expected 2 comma-separated numbers"),
        ("roach.activation", "tanh", "only relu"),
        ("roach.hidden", "16;12", "comma-separated integers"),
        ("roach.training_data", "{not json", "not JSON"),
        ("roach.train_config", "", "not JSON"),
        ("roach.state_dim", "23", "expected 24/2"),
        ("roach.input_dim", "22", "expected 24/24"),
        ("roach.state_names", ",".join(reversed(STATE_NAMES)), "state layout"),
    ],
)
def test_bad_metadata_value_is_refused(tmp_path: Path, key: str, value: str, said: str) -> None:
    """A value that does not parse, or disagrees with robot_contract.state, is refused."""
    assert said in _refused(_write(tmp_path / "m.onnx", {key: value}))


def test_hidden_widths_disagreeing_with_weights_are_refused(tmp_path: Path) -> None:
    """Metadata hidden widths other than the weight shapes are refused."""
    assert "weight shapes" in _refused(_write(tmp_path / "m.onnx", {"roach.hidden": "32,32"}))


def test_wrong_weight_shape_is_refused(tmp_path: Path) -> None:
    """A first layer that takes 20 inputs instead of 24 is refused."""

    def narrow(a: Arrays) -> None:
        a[0][0] = a[0][0][:, :20]

    assert "weight shapes" in _refused(_write(tmp_path / "m.onnx", edit=narrow))


def test_check_dims_names_the_shapes() -> None:
    """check_dims accepts the metadata's widths and refuses a swapped layer."""
    weights, _, _ = _arrays()
    check_dims(_meta(), weights)
    with pytest.raises(ModelFileError, match="weight shapes"):
        check_dims(_meta(), [weights[1], weights[0], weights[2]])


@pytest.mark.parametrize(
    ("where", "value"), [("weight", np.nan), ("bias", np.inf), ("norm", np.nan)]
)
def test_non_finite_parameter_is_refused(tmp_path: Path, where: str, value: float) -> None:
    """A NaN or infinity in any weight, bias or normalisation array is refused."""

    def spoil(a: Arrays) -> None:
        target = {"weight": a[0][1], "bias": a[1][2], "norm": a[2]["delta_mean"]}[where]
        target.flat[3] = value

    assert "non-finite" in _refused(_write(tmp_path / "m.onnx", edit=spoil))


def test_non_positive_std_is_refused(tmp_path: Path) -> None:
    """A normalisation std of 0 is refused."""

    def zero(a: Arrays) -> None:
        a[2]["input_std"][5] = 0.0

    assert "std" in _refused(_write(tmp_path / "m.onnx", edit=zero))


def test_missing_or_retyped_initializer_is_refused(tmp_path: Path) -> None:
    """A file without layers.1.bias, or with a float64 normalisation array, is refused."""
    proto = build_model_proto(*_arrays(), encode_metadata(_meta()))
    kept = [t for t in proto.graph.initializer if t.name != "layers.1.bias"]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    path = tmp_path / "no_bias.onnx"
    onnx.save(proto, str(path))
    assert "layers.1.bias" in _refused(path)

    proto = build_model_proto(*_arrays(), encode_metadata(_meta()))
    for i, t in enumerate(proto.graph.initializer):
        if t.name == "norm.input_mean":
            a = onnx.numpy_helper.to_array(t).astype(np.float64)
            proto.graph.initializer[i].CopyFrom(onnx.numpy_helper.from_array(a, t.name))
    path = tmp_path / "float64.onnx"
    onnx.save(proto, str(path))
    assert "float32" in _refused(path)


def test_other_graph_names_are_refused(tmp_path: Path) -> None:
    """A graph whose input is not called x is refused."""
    proto = build_model_proto(*_arrays(), encode_metadata(_meta()))
    proto.graph.input[0].name = "inputs"
    for node in proto.graph.node:
        node.input[:] = ["inputs" if n == "x" else n for n in node.input]
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    assert "input 'x'" in _refused(path)


def _with_steps(path: Path, edit: Callable[[list[np.ndarray]], None] | None = None) -> Path:
    """A model file with per-parameter step scales (``edit`` changes the list
    [weight scales..., bias scales...] before writing)."""
    weights, biases, norm = _arrays()
    rng = np.random.default_rng(3)
    scales = [rng.uniform(0.0, 3.0, a.shape).astype(np.float32) for a in [*weights, *biases]]
    if edit is not None:
        edit(scales)
    n = len(weights)
    proto = build_model_proto(
        weights, biases, norm, encode_metadata(_meta()),
        step_weights=scales[:n], step_biases=scales[n:],
    )  # fmt: skip
    onnx.save(proto, str(path))
    return path


def test_step_scales_round_trip_and_leave_the_graph_alone(tmp_path: Path) -> None:
    """Per-parameter step scales read back exactly; a file without them reads None; the
    graph computes the same with or without them, and the inference bytes drop them."""
    ort = pytest.importorskip("onnxruntime")
    from robot_contract.model_file import inference_bytes

    f = read_model_file(_with_steps(tmp_path / "s.onnx"))
    rng = np.random.default_rng(3)
    weights, biases, _ = _arrays()
    want = [rng.uniform(0.0, 3.0, a.shape).astype(np.float32) for a in [*weights, *biases]]
    assert f.step_weights is not None and f.step_biases is not None
    for got, w in zip([*f.step_weights, *f.step_biases], want, strict=True):
        np.testing.assert_array_equal(got, w)
    assert read_model_file(_write(tmp_path / "plain.onnx")).step_weights is None
    slim = onnx.load_from_string(inference_bytes(f.proto))
    assert not [t.name for t in slim.graph.initializer if t.name.startswith("step.")]
    assert len(slim.graph.initializer) == len(f.proto.graph.initializer) - len(want)
    x = np.random.default_rng(1).standard_normal((4, 24)).astype(np.float32)
    plain = ort.InferenceSession(str(tmp_path / "plain.onnx"), providers=["CPUExecutionProvider"])
    steps = ort.InferenceSession(inference_bytes(f.proto), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(plain.run(None, {"x": x})[0], steps.run(None, {"x": x})[0])


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda s: s.__setitem__(0, s[0][:, :-1].copy()), "has shape"),
        (lambda s: s[1].__setitem__((0, 0), -0.5), "negative or not finite"),
        (lambda s: s[-1].__setitem__(0, np.inf), "negative or not finite"),
    ],
)
def test_bad_step_scales_are_refused(tmp_path: Path, edit: Callable, said: str) -> None:
    """Step scales of the wrong shape, negative or non-finite are refused in one line."""
    assert said in _refused(_with_steps(tmp_path / "s.onnx", edit))


def test_partial_step_scales_are_refused(tmp_path: Path) -> None:
    """Step scales for some parameters only (or for a parameter that does not exist)."""
    path = _with_steps(tmp_path / "s.onnx")
    proto = onnx.load(str(path))
    gone = next(t for t in proto.graph.initializer if t.name == "step.layers.1.bias")
    proto.graph.initializer.remove(gone)
    onnx.save(proto, str(path))
    assert "missing step.layers.1.bias" in _refused(path)
    gone.name = "step.layers.9.bias"
    proto.graph.initializer.append(gone)
    onnx.save(proto, str(path))
    assert "unexpected step.layers.9.bias" in _refused(path)
