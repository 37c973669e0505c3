"""``roach export``: a training run folder -> the robot's ONNX file (docs/model-format.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a trained model to ONNX for the robot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run folder written by `roach train`")
    parser.add_argument("--out", required=True, type=Path, help="ONNX file to write")


def run(args: argparse.Namespace) -> int:
    from offboard_training.export import export_run

    report = export_run(args.run_dir, args.out)
    print(
        f"wrote {report.path} ({report.bytes / 1e6:.2f} MB), onnx.checker ok, "
        f"max |onnxruntime - torch| = {report.max_abs_diff:.2e}"
    )
    return 0
