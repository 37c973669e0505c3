"""MB and GrBAL training, top to bottom in one function, plus the run folder it writes.

Run folder: ``config.json`` (the TrainConfig), ``metrics.jsonl`` (one JSON object per
epoch), ``loss.png``, ``model.pt`` (best-validation weights, the learned per-parameter
steps with ``learn_step``, normaliser, config, data summary) and ``summary.json``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.func import vmap
from tqdm import tqdm

from offboard_training.config import TrainConfig
from offboard_training.dataset import Episode, one_line, split_by_episode
from offboard_training.errors import DatasetError
from offboard_training.evaluate import errors_at, transition_mse
from offboard_training.model import (
    DynamicsNet,
    Normalizer,
    Params,
    Step,
    adapted_future_loss,
    kept_steps_future_loss,
    mse,
)
from offboard_training.version import code_version
from offboard_training.windows import Transitions, raw_arrays, to_transitions
from robot_contract.errors import ConfigError, ModelFileError
from robot_contract.state import MODEL_INPUT_STATE_SLICE, STATE_NAMES

Z_INPUT = STATE_NAMES.index("z") - MODEL_INPUT_STATE_SLICE.start
"""Column of the height ``z`` in the model input."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val: float
    epochs_run: int
    wall_s: float
    stopped_by: str
    """``patience``, ``epochs`` or ``clock``."""


def set_determinism(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


def train(
    config: TrainConfig,
    episodes: Sequence[Episode],
    data_summary: dict,
    run_dir: Path,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Trains one model on ``episodes`` and writes the run folder ``run_dir``.

    ``on_epoch``: called with each epoch's metrics row as it is written (a sweep's
    progress report)."""
    t0 = time.monotonic()
    set_determinism(config.seed, config.threads)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    M, K = config.M, config.K
    span = M + K + config.inner_steps - 1  # transitions one meta-training example covers

    # ---- split by episode, normalise once over the training split
    train_idx, val_idx = split_by_episode(len(episodes), config.val_fraction, config.seed)
    train_eps = [episodes[i] for i in train_idx]
    val_eps = [episodes[i] for i in val_idx]
    x_raw, d_raw = raw_arrays(train_eps)
    input_floor = np.full(x_raw.shape[1], config.input_std_floor)
    input_floor[Z_INPUT] = max(config.input_std_floor, config.z_input_std_floor)
    norm = Normalizer.fit(x_raw, d_raw, input_floor, config.delta_std_floor)
    tr = to_transitions(train_eps, norm)
    va = to_transitions(val_eps, norm)
    train_windows = tr.window_starts(span)
    val_windows = va.window_starts(M + K, stride=K)
    kept_val_windows = va.window_starts(span, stride=K)
    if len(val_windows) == 0 or (
        config.algo == "grbal" and (len(train_windows) == 0 or len(kept_val_windows) == 0)
    ):
        longest = max(ep.steps for ep in episodes)
        raise DatasetError(
            f"no window of M+K+inner_steps-1={span} transitions fits the episodes "
            f"(longest has {longest}); use smaller M/K/inner_steps or longer episodes"
        )

    # ---- model, optimiser, the loss of one outer step
    model = DynamicsNet(config.hidden, norm)
    start_step = None
    if config.init_from:
        start_step = _init_from(model, norm, config, Path(config.init_from))
    params = model.layer_params()
    # learn_step: one log step size per parameter element, optimised with the weights (no L2)
    log_step = {
        k: (
            torch.log(start_step[k]).clone()
            if start_step is not None
            else torch.full_like(v.detach(), math.log(config.inner_lr))
        ).requires_grad_()
        for k, v in params.items()
    }
    groups: list[dict] = [{"params": list(model.parameters())}]
    if config.learn_step:
        groups.append({"params": list(log_step.values()), "weight_decay": 0.0})
    opt = torch.optim.Adam(groups, lr=config.outer_lr, weight_decay=config.weight_decay)

    def step_size(detach: bool = False) -> Step:
        if not config.learn_step:
            return config.inner_lr
        return {k: torch.exp(v.detach() if detach else v) for k, v in log_step.items()}

    rng = np.random.default_rng(config.seed)
    meta_loss = vmap(adapted_future_loss, in_dims=(None, 0, 0, 0, 0, None))
    kept_loss = vmap(kept_steps_future_loss, in_dims=(None, 0, 0, None, None, None))

    def step_loss() -> torch.Tensor:
        if config.algo == "mb":
            idx = torch.as_tensor(rng.integers(0, tr.n, config.batch_size))
            return mse(params, tr.xn[idx], tr.yn[idx])
        starts = train_windows[rng.integers(0, len(train_windows), config.meta_batch)]
        if config.inner_steps > 1:
            xn, yn = tr.gather_span(starts, span)
            return kept_loss(params, xn, yn, M, K, step_size()).mean()
        xp, yp, xf, yf = tr.gather(starts, M, K)
        return meta_loss(params, xp, yp, xf, yf, step_size()).mean()

    # ---- outer loop with early stopping on the held-out episodes
    metrics_path = run_dir / "metrics.jsonl"
    metrics_path.write_text("")
    (run_dir / "config.json").write_text(json.dumps(config.to_json(), indent=1))
    best_val, best_epoch, best_state = float("inf"), 0, copy.deepcopy(model.state_dict())
    best_step = step_size(detach=True)
    history: list[dict] = []
    stopped_by = "epochs"
    decays, last_change = 0, 0
    bar = tqdm(range(1, config.epochs + 1), desc=f"train {config.algo}", disable=not progress)
    for epoch in bar:
        losses = []
        for _ in range(config.steps_per_epoch):
            loss = step_loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if config.learn_step:
                torch.nn.utils.clip_grad_norm_(list(log_step.values()), config.grad_clip)
            opt.step()
            losses.append(float(loss.detach()))
        val = errors_at(params, va, val_windows, M, K, step_size(detach=True))
        val_mse = transition_mse(params, va)
        score = val.after if config.algo == "grbal" else val_mse
        if config.algo == "grbal" and config.inner_steps > 1:
            score = _kept_steps_error(
                params, va, kept_val_windows, span, config, step_size(detach=True)
            )
        row = {
            "epoch": epoch,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": float(np.mean(losses)),
            "val_mse": val_mse,
            "val_before_step": val.before,
            "val_after_step": val.after,
            "val_score": score,
            "wall_s": round(time.monotonic() - t0, 2),
        }
        history.append(row)
        with metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if on_epoch is not None:
            on_epoch(row)
        if not np.isfinite(row["train_loss"]):
            raise ConfigError(
                f"training diverged at epoch {epoch} (loss {row['train_loss']}); "
                "lower --inner-lr or --lr"
            )
        if score < best_val:
            best_val, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
            best_step = copy.deepcopy(step_size(detach=True))
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{score:.4f}", best=best_epoch)
        if epoch - best_epoch >= config.patience:
            stopped_by = "patience"
            break
        # a plateau lowers the outer learning rate (at most max_lr_decays times)
        if (
            config.lr_decay < 1.0
            and decays < config.max_lr_decays
            and epoch - max(best_epoch, last_change) >= config.lr_decay_patience
        ):
            for group in opt.param_groups:
                group["lr"] *= config.lr_decay
            decays, last_change = decays + 1, epoch
        if config.max_minutes and time.monotonic() - t0 > 60.0 * config.max_minutes:
            stopped_by = "clock"
            break
    bar.close()

    # ---- keep the best-validation weights; write the run folder
    model.load_state_dict(best_state)
    wall = time.monotonic() - t0
    summary = {
        "best_epoch": best_epoch,
        "best_val": best_val,
        "epochs_run": len(history),
        "stopped_by": stopped_by,
        "wall_s": round(wall, 2),
        "train_episodes": len(train_eps),
        "val_episodes": len(val_eps),
        "train_transitions": tr.n,
        "val_transitions": va.n,
        "best_metrics": history[best_epoch - 1] if best_epoch else None,
    }
    if config.learn_step:
        summary["step_scale_quantiles"] = _scale_quantiles(best_step, config.inner_lr)
    save_run(run_dir, model, norm, config, data_summary, summary, best_step)
    plot_losses(history, run_dir / "loss.png", config.algo)
    return TrainResult(run_dir, best_epoch, best_val, len(history), wall, stopped_by)


def _kept_steps_error(
    params: Params,
    data: Transitions,
    starts: np.ndarray,
    span: int,
    config: TrainConfig,
    step: Step,
    chunk: int = 256,
) -> float:
    """Mean ``kept_steps_future_loss`` with step ``step`` over the ``span``-long
    validation windows at ``starts``."""
    detached = {k: v.detach() for k, v in params.items()}
    fn = vmap(kept_steps_future_loss, in_dims=(None, 0, 0, None, None, None))
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(starts), chunk):
            xn, yn = data.gather_span(starts[i : i + chunk], span)
            total += float(fn(detached, xn, yn, config.M, config.K, step).sum())
    return total / len(starts)


def _scale_quantiles(step: Step, inner_lr: float) -> dict[str, float]:
    """Quantiles of the learned steps / ``inner_lr`` over every parameter (the summary's
    one-look description of what was learned)."""
    assert isinstance(step, dict)
    flat = torch.cat([v.flatten() for v in step.values()]).double() / inner_lr
    qs = torch.quantile(flat, torch.tensor([0.0, 0.05, 0.5, 0.95, 1.0], dtype=torch.float64))
    return dict(zip(("min", "p5", "median", "p95", "max"), (round(float(q), 6) for q in qs)))


def _init_from(
    model: DynamicsNet, norm: Normalizer, config: TrainConfig, run_dir: Path
) -> Params | None:
    """Copies the layer weights of another run; its hidden sizes and normaliser must match.
    Returns its learned steps when both runs learn them (None otherwise)."""
    start = load_run(run_dir)
    if start.config.hidden != config.hidden:
        raise ConfigError(
            f"--init-from {run_dir}: hidden {start.config.hidden} differs from {config.hidden}"
        )
    same = all(
        np.allclose(a, b, rtol=1e-6, atol=1e-9)
        for a, b in zip(start.norm.as_dict().values(), norm.as_dict().values())
    )
    if not same:
        raise ConfigError(
            f"--init-from {run_dir}: its normalisation differs (other data, seed or split)"
        )
    model.layers.load_state_dict(start.model.layers.state_dict())
    return start.step if config.learn_step else None


def save_run(
    run_dir: Path,
    model: DynamicsNet,
    norm: Normalizer,
    config: TrainConfig,
    data_summary: dict,
    summary: dict,
    step: Step | None = None,
) -> None:
    torch.save(
        {
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "step": {k: v.detach().clone() for k, v in step.items()}
            if isinstance(step, dict)
            else {},
            "normalizer": {k: torch.as_tensor(v) for k, v in norm.as_dict().items()},
            "config": json.dumps(config.to_json()),
            "data_summary": json.dumps(data_summary),
            "summary": json.dumps(summary),
            "code_version": code_version(),
        },
        run_dir / "model.pt",
    )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))


@dataclass(frozen=True)
class TrainedRun:
    """A run folder loaded back: the model (best weights) and what made it."""

    model: DynamicsNet
    norm: Normalizer
    config: TrainConfig
    data_summary: dict
    summary: dict
    code_version: str
    step: Params | None = None
    """The learned per-parameter steps (``learn_step``), by parameter name; None if the
    run used one step size, ``config.inner_lr``."""


def load_run(run_dir: Path) -> TrainedRun:
    path = Path(run_dir) / "model.pt"
    if not path.is_file():
        raise ModelFileError(f"{path}: missing; give a run folder written by `roach train`")
    try:
        blob = torch.load(path, weights_only=True)
        config = TrainConfig.from_json(json.loads(blob["config"]))
        norm = Normalizer(**{k: v.numpy() for k, v in blob["normalizer"].items()})
        model = DynamicsNet(config.hidden, norm)
        model.load_state_dict(blob["state_dict"])
        return TrainedRun(
            model,
            norm,
            config,
            json.loads(blob["data_summary"]),
            json.loads(blob["summary"]),
            str(blob["code_version"]),
            dict(blob["step"]) if blob.get("step") else None,
        )
    except ModelFileError:
        raise
    except Exception as exc:  # torch/pickle/JSON/KeyError/...: many types, some multi-line
        raise ModelFileError(
            f"{path}: not a readable training run ({one_line(exc)}); "
            "give a run folder written by `roach train`"
        ) from None


def plot_losses(history: list[dict], path: Path, algo: str) -> None:
    """Train loss and validation error (before/after the step) per epoch, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], label=f"train loss ({algo})")
    ax.plot(epochs, [h["val_mse"] for h in history], label="val one-step MSE")
    ax.plot(epochs, [h["val_before_step"] for h in history], "--", label="val K-step, no step")
    ax.plot(epochs, [h["val_after_step"] for h in history], label="val K-step, after step")
    ax.set_xlabel("epoch")
    ax.set_ylabel("normalised MSE")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
