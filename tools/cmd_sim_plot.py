"""``roach sim-plot``: trajectories of one open-loop command under each condition family.

One panel per family (terrain, slope, payload, tow, missing leg, motor gain, battery, pose
miscalibration), each overlaying the nominal run and the family's variants for a few
seeds, so the plot shows both what a condition does and how much the seeds scatter.

  roach sim-plot --out docs/img/conditions.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from firmware_bridge.records import DUTY_FULL_SCALE
from firmware_bridge.sim.conditions import parse_condition
from robot_contract.errors import ConfigError
from tools.argtypes import float_in, int_in

HELP = "plot one open-loop command under each condition family"

FAMILIES: dict[str, tuple[str, ...]] = {
    "terrain": ("terrain=styrofoam", "terrain=turf", "terrain=gravel", "terrain=ice"),
    "slope": ("slope_deg=15", "slope_deg=-15"),
    "payload": ("payload_g=30", "payload_g=30,payload_x_mm=-30", "payload_g=20,payload_y_mm=15"),
    "tow": ("tow_g=10", "tow_g=20"),
    "missing leg": ("missing_leg=RF", "missing_leg=LM", "missing_leg=RF+RM"),
    "motor gain": ("gain_left=0.6", "gain_right=0.6"),
    "battery": ("battery_v=4.3", "battery_v=3.2"),
    "pose miscalibration (reported)": ("yaw_offset_deg=20", "pos_offset_mm=40"),
}
"""Family -> conditions overlaid on the nominal run."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/img/conditions.png", help="PNG to write")
    parser.add_argument(
        "--duty", type=int, nargs=2, default=(2400, 2400), metavar=("LEFT", "RIGHT"),
        help="open-loop PWM duty of the command (default 2400 2400)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds",
        type=float_in(0, 3600, open_low=True),
        default=2.0,
        help="duration of each run (s)",
    )
    parser.add_argument("--seeds", type=int_in(1, 100), default=3, help="seeds per condition")


def run(args: argparse.Namespace) -> int:
    if not 0.0 < args.seconds <= 60.0:
        raise ConfigError(f"--seconds {args.seconds:g} is out of range; valid: 0..60")
    if not 1 <= args.seeds <= 20:
        raise ConfigError(f"--seeds {args.seeds} is out of range; valid: 1..20")
    if not all(-DUTY_FULL_SCALE <= d <= DUTY_FULL_SCALE for d in args.duty):
        raise ConfigError(
            f"--duty {args.duty[0]} {args.duty[1]} is out of range; "
            f"valid: -{DUTY_FULL_SCALE}..{DUTY_FULL_SCALE} each"
        )
    for conditions in FAMILIES.values():
        for text in conditions:
            parse_condition(text)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase

    out = Path(args.out)
    _check_out(out, FigureCanvasBase.get_supported_filetypes())  # before the simulation

    from firmware_bridge.sim.open_loop import duty_trajectory
    from firmware_bridge.sim.robot import SimRobot

    robot = SimRobot()
    duty = (args.duty[0], args.duty[1])
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.5), constrained_layout=True)
    for ax, (family, conditions) in zip(axes.flat, FAMILIES.items()):
        reported = family.startswith("pose")
        for k, condition in enumerate(("", *conditions)):
            color = "0.45" if k == 0 else f"C{k - 1}"
            for seed in range(args.seeds):
                path = duty_trajectory(
                    robot, duty, args.seconds, condition=condition, seed=seed, reported=reported
                )
                label = (condition or "nominal") if seed == 0 else None
                ax.plot(path[:, 0], path[:, 1], color=color, lw=1.3, alpha=0.85, label=label)
                ax.plot(path[-1, 0], path[-1, 1], "o", color=color, ms=3)
                if reported and seed == 0:  # the reported heading, every 0.4 s
                    every = path[:: max(1, round(0.4 / 0.05))]
                    ax.quiver(
                        every[:, 0], every[:, 1], np.cos(every[:, 2]), np.sin(every[:, 2]),
                        color=color, angles="xy", scale_units="xy", scale=8.0, width=0.005,
                    )  # fmt: skip
        ax.set_title(family)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(True, lw=0.3)
        ax.legend(fontsize=7, loc="best")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    fig.suptitle(
        f"Open-loop duty {args.duty[0]}/{args.duty[1]} for {args.seconds:g} s from the origin "
        f"heading +x, {args.seeds} seeds per condition (nominal: carpet, grey)"
    )
    try:
        fig.savefig(out, dpi=90)
    except (OSError, ValueError) as exc:  # e.g. a full disk, an unknown suffix
        msg = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise ConfigError(f"--out {str(out)!r}: cannot write the plot: {msg}") from None
    print(f"wrote {out}")
    return 0


def _check_out(out: Path, formats: dict[str, str]) -> None:
    """Checks the suffix of ``out`` is one of ``formats``, makes its folder and checks the
    folder can take a new file; ConfigError if not."""
    if out.suffix[1:].lower() not in formats:
        raise ConfigError(
            f"--out {str(out)!r}: unknown image type {out.suffix!r}; valid: "
            + ", ".join(f".{f}" for f in sorted(formats))
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {str(out)!r}: cannot make its folder: {exc.strerror}") from None
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a directory; give a .png file path")
    try:  # a real file in the folder: access bits do not tell for root or /proc
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--out {str(out)!r}: cannot write in its folder: {exc.strerror}"
        ) from None
