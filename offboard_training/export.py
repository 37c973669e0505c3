"""ONNX export of a trained run, exactly per docs/model-format.md, and reading it back.

robot_contract.model_file owns the file's contract: the metadata encoding, the graph
(``x`` [batch, 24] -> ... -> ``delta_norm``, ``delta``) and the strict reader. This
module fills it from a training run, checks onnxruntime against PyTorch before an
atomic write, and reads files back as torch parameters for offboard evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from offboard_training.model import INPUT_DIM, Normalizer, Params, Step
from offboard_training.train import TrainedRun, load_run
from robot_contract.errors import ModelFileError
from robot_contract.model_file import (
    INPUT_NAME,
    METADATA_KEYS,
    OUTPUT_NAME,
    OUTPUT_NORM_NAME,
    ModelFile,
    ModelMeta,
    bias_initializer,
    build_model_proto,
    check_model_proto,
    encode_metadata,
    inference_bytes,
    read_model_file,
    stamp_model,
    weight_initializer,
)

__all__ = [
    "METADATA_KEYS",
    "ExportReport",
    "OnnxModel",
    "build_onnx",
    "export_run",
    "max_abs_diff_vs_torch",
    "metadata_for",
    "read_onnx",
]

PRODUCER_NAME = "roach-grbal offboard_training"
TOLERANCE = 1e-5
"""Largest allowed |onnxruntime - PyTorch| on either output (state or normalised units)."""


def metadata_for(run: TrainedRun) -> dict[str, str]:
    """Every ``roach.*`` key of docs/model-format.md, as strings."""
    c = run.config
    meta = ModelMeta.for_running_code(
        algorithm=c.algo,
        hidden=c.hidden,
        M=c.M,
        K=c.K,
        inner_lr=c.robot_inner_lr or c.inner_lr,
        training_data=run.data_summary,
        train_config=c.to_json(),
        code_version=run.code_version,
        seed=c.seed,
    )
    return encode_metadata(meta)


def build_onnx(
    weights: dict[str, np.ndarray],
    norm: Normalizer,
    metadata: dict[str, str],
    step_scales: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """The model graph from ``layers.{i}.weight/bias`` arrays and the normaliser;
    ``step_scales``: the same names -> per-parameter step scales, or None."""
    n = sum(1 for k in weights if k.endswith(".weight"))
    ws, bs = [weight_initializer(i) for i in range(n)], [bias_initializer(i) for i in range(n)]
    return build_model_proto(
        [weights[k] for k in ws],
        [weights[k] for k in bs],
        norm.as_dict(),
        metadata,
        producer_name=PRODUCER_NAME,
        step_weights=None if step_scales is None else [step_scales[k] for k in ws],
        step_biases=None if step_scales is None else [step_scales[k] for k in bs],
    )


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
    scales = None
    if run.step is not None:  # learned steps, stored relative to the training step
        scales = {k: (v / run.config.inner_lr).numpy() for k, v in run.step.items()}
    model = build_onnx(weights, run.norm, metadata_for(run), scales)
    onnx.checker.check_model(model, full_check=True)
    check_model_proto(model, out)  # what the robot's reader would refuse is never written
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = stamp_model(model)  # the sanity probes and the SHA-256 the robot verifies
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

    graph = inference_bytes(onnx.load_from_string(onnx_bytes))
    sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    ort_norm, ort_delta = sess.run([OUTPUT_NORM_NAME, OUTPUT_NAME], {INPUT_NAME: x})
    with torch.no_grad():
        t_norm, t_delta = run.model(torch.as_tensor(x))
    return float(
        max(np.abs(ort_norm - t_norm.numpy()).max(), np.abs(ort_delta - t_delta.numpy()).max())
    )


@dataclass(frozen=True)
class OnnxModel:
    """A model file read back for offboard evaluation (weights as float32 torch tensors)."""

    file: ModelFile
    params: Params
    """``layers.{i}.weight`` [out, in] and ``layers.{i}.bias`` [out], layer by layer."""
    norm: Normalizer
    """The file's normalisation (float32 arrays [24])."""

    @property
    def metadata(self) -> dict[str, str]:
        return self.file.metadata

    @property
    def M(self) -> int:
        return self.file.meta.M

    @property
    def K(self) -> int:
        return self.file.meta.K

    @property
    def inner_lr(self) -> float:
        return self.file.meta.inner_lr

    def step_for(self, inner_lr: float) -> Step:
        """The step the robot takes with step size ``inner_lr``: the number itself, or per
        parameter ``inner_lr`` times the file's step scales."""
        f = self.file
        if f.step_weights is None or f.step_biases is None:
            return inner_lr
        step: Params = {}
        for i, (w, b) in enumerate(zip(f.step_weights, f.step_biases, strict=True)):
            step[weight_initializer(i)] = torch.as_tensor(w * np.float32(inner_lr))
            step[bias_initializer(i)] = torch.as_tensor(b * np.float32(inner_lr))
        return step


def read_onnx(path: Path) -> OnnxModel:
    """Reads and checks a model file (robot_contract.model_file.read_model_file)."""
    f = read_model_file(path)
    params: Params = {}
    for i, (w, b) in enumerate(zip(f.weights, f.biases)):
        params[weight_initializer(i)] = torch.as_tensor(w.copy())
        params[bias_initializer(i)] = torch.as_tensor(b.copy())
    return OnnxModel(f, params, Normalizer(**f.norm))
