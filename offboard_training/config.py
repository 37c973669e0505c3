"""Training configuration: one frozen dataclass, validated once at construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from robot_contract.errors import ConfigError

ALGOS = ("mb", "grbal")


def parse_hidden(text: str) -> tuple[int, ...]:
    """``"256,256"`` -> ``(256, 256)``; one or more positive widths, comma-separated."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"--hidden {text!r}: expected comma-separated positive integers, e.g. 256,256"
        ) from None
    if not widths or any(w < 1 or w > 4096 for w in widths):
        raise ConfigError(f"--hidden {text!r}: each width must be in 1..4096, e.g. 256,256")
    return widths


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (written to the run folder as config.json)."""

    algo: str = "grbal"
    """``mb`` (plain regression on all transitions) or ``grbal`` (meta-learned)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the ReLU MLP."""
    M: int = 32
    """Past window: transitions the one adaptation step is taken on."""
    K: int = 16
    """Future window: transitions the adapted model is scored on (GrBAL meta-loss)."""
    inner_lr: float = 0.3
    """Fixed SGD step size of the adaptation step during meta-training."""
    inner_steps: int = 1
    """GrBAL: adaptation steps unrolled per meta-training example. 1 is the published
    GrBAL (reset, one step, score the next K). S > 1 trains for steps that are kept from
    tick to tick, as ``roach run``'s default mode keeps them: step s starts from step
    s - 1's weights, on the window one transition later, and the meta-loss is the mean
    of the K-step errors after each of the S steps."""
    learn_step: bool = False
    """GrBAL: meta-learn one step size per weight and bias (Meta-SGD; Li et al. 2017)
    alongside the weights, starting from ``inner_lr``. The model file carries them as
    step scales relative to ``inner_lr`` (docs/model-format.md)."""
    robot_inner_lr: float = 0.0
    """The step the robot takes, written to the model file as ``roach.inner_lr``; 0 = the
    meta-training step. Closed loop measures it separately: the step that predicts the
    next K transitions best is not the one that drives best (docs/evaluation.md)."""
    outer_lr: float = 1e-3
    """Adam learning rate (both algorithms)."""
    meta_batch: int = 32
    """GrBAL: windows per outer step."""
    batch_size: int = 256
    """MB: transitions per step."""
    weight_decay: float = 1e-3
    """L2 coefficient (Adam's coupled weight decay)."""
    grad_clip: float = 10.0
    """Global gradient-norm clip of each outer step."""
    epochs: int = 60
    """Upper bound on epochs; early stopping usually ends sooner."""
    steps_per_epoch: int = 200
    """Outer steps per epoch (an epoch is a fixed number of steps, not a data pass)."""
    patience: int = 8
    """Early stopping: epochs without a validation improvement before stopping."""
    lr_decay: float = 1.0
    """Outer learning-rate factor applied after ``lr_decay_patience`` epochs without a
    validation improvement (1.0 = constant rate)."""
    lr_decay_patience: int = 4
    """Epochs without improvement (since the best or the last decay) before a decay."""
    max_lr_decays: int = 2
    """Most decays per run."""
    max_minutes: float = 0.0
    """Wall-clock cap in minutes (0 = none). A run cut by the clock is not reproducible."""
    val_fraction: float = 0.15
    """Share of episodes held out (whole episodes) for validation and early stopping."""
    input_std_floor: float = 1e-2
    """Smallest input std (state units): a feature nearly constant in training cannot
    blow up to thousands of normalised units under an unseen condition (e.g. a slope)."""
    z_input_std_floor: float = 1000.0
    """Smallest std of the height input ``z`` (m). Absolute height in the lab frame is not a
    dynamics feature: on a slope it drifts by decimetres in one episode, while in training
    it varies by millimetres. The default, 1 km, takes it out of the model's input (its
    normalised value stays below 1e-3 within a metre of the start) without changing the
    file's layout; a floor of 0.05 m left the adapted model off the path uphill
    (docs/evaluation.md)."""
    delta_std_floor: float = 1e-4
    """Smallest target std (state units)."""
    init_from: str = ""
    """Run folder whose weights start this run (same hidden sizes and data split), e.g. GrBAL
    meta-training started from the MB fit; empty = fresh random initialisation."""
    seed: int = 0
    threads: int = 1
    """Torch intra-op threads; 1 keeps results bit-identical across machines."""

    def __post_init__(self) -> None:
        def bad(name: str, valid: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r} is invalid; valid: {valid}")

        if self.algo not in ALGOS:
            raise bad("algo", " or ".join(ALGOS))
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise bad("hidden", "one or more positive widths, e.g. 256,256")
        for name in (
            "M",
            "K",
            "inner_steps",
            "meta_batch",
            "batch_size",
            "epochs",
            "steps_per_epoch",
            "threads",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, "an integer >= 1")
        if self.inner_steps > 64:
            raise bad("inner_steps", "an integer from 1 to 64")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise bad("patience", "an integer >= 1")
        if not isinstance(self.lr_decay_patience, int) or self.lr_decay_patience < 1:
            raise bad("lr_decay_patience", "an integer >= 1")
        if not isinstance(self.max_lr_decays, int) or self.max_lr_decays < 0:
            raise bad("max_lr_decays", "an integer >= 0")
        if not (isinstance(self.lr_decay, int | float) and 0.0 < self.lr_decay <= 1.0):
            raise bad("lr_decay", "a number in (0, 1]")
        for name in (
            "inner_lr",
            "outer_lr",
            "grad_clip",
            "input_std_floor",
            "z_input_std_floor",
            "delta_std_floor",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise bad(name, "a finite number > 0")
        for name in ("weight_decay", "max_minutes", "robot_inner_lr"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise bad(name, "a finite number >= 0")
        if not (0.0 < self.val_fraction < 1.0):
            raise bad("val_fraction", "a number strictly between 0 and 1")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise bad("seed", "an integer >= 0")
        if not isinstance(self.learn_step, bool):
            raise bad("learn_step", "true or false")
        if self.learn_step and self.algo != "grbal":
            raise ConfigError("learn_step=True needs algo=grbal (MB takes no step in training)")

    def to_json(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training config keys {sorted(unknown)}")
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(int(h) for h in d["hidden"])
        return cls(**d)
