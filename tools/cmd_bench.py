"""``roach bench [WHAT]``: benchmarks that print numbers (never pass/fail on time).

With no name (or ``--only step``) it runs the control-step benchmark of
tools/bench_step.py: the ``paper`` and ``default`` configurations at 1 and 2 threads
against the machine's sgemm limit, PyTorch eager, numpy and onnxruntime, then the onboard
process's peak memory and time to the first command; ``--json OUT`` writes every figure.
The other benchmarks register here by name as ``"module:function"`` (the function takes
the parsed arguments and prints its own lines) and are reached as ``roach bench NAME``
or ``roach bench --only NAME``; ``all`` runs every one in order.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from robot_contract.errors import ConfigError

HELP = "benchmarks that print numbers"

BENCHMARKS: dict[str, str] = {
    "step": "tools.cmd_bench:bench_step",
    "codec": "tools.cmd_bench:bench_codec",
    "link": "tools.cmd_bench:bench_link",
    "sim": "tools.cmd_bench:bench_sim",
    "onboard": "tools.cmd_bench_onboard:run_benchmark",
    "cluster": "offboard_training.cluster_bench:run_benchmark",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    choices = (*BENCHMARKS, "all")
    parser.add_argument(
        "what", nargs="?", choices=choices, default=None, help="which benchmark (default: step)"
    )
    parser.add_argument("--only", choices=choices, default=None, help="same as WHAT")
    parser.add_argument(
        "--quick", action="store_true", help="a smaller workload (for tests and smoke runs)"
    )
    parser.add_argument("--json", default=None, metavar="OUT", help="step: write every figure")
    parser.add_argument(
        "--steps", type=int, default=200, help="step: timed control steps after warm-up (200)"
    )
    parser.add_argument(
        "--ref-repeats", type=int, default=30, help="step: timed calls of each reference (30)"
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="step: thread counts (1 2)"
    )


def run(args: argparse.Namespace) -> int:
    if args.what and args.only and args.what != args.only:
        raise ConfigError(f"roach bench {args.what} --only {args.only}: name one benchmark")
    what = args.what or args.only or "step"
    if args.steps < 1 or args.ref_repeats < 1 or min(args.threads) < 1:
        raise ConfigError("roach bench: --steps, --ref-repeats and --threads must be >= 1")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise ConfigError(f"roach bench --json {args.json}: its folder does not exist")
    names = list(BENCHMARKS) if what == "all" else [what]
    for name in names:
        module_name, _, func = BENCHMARKS[name].partition(":")
        getattr(importlib.import_module(module_name), func)(args)
    return 0


def bench_step(args: argparse.Namespace) -> None:
    """The control step against the machine's limit and the references (tools/bench_step.py)."""
    from tools.bench_step import run_all

    steps, ref = (20, 3) if args.quick else (args.steps, args.ref_repeats)
    out = run_all(steps, ref, tuple(args.threads))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")


def bench_codec(args: argparse.Namespace) -> None:
    from firmware_bridge.codec_bench import LINK_BYTES_PER_S, run_codec_bench

    pairs = 2_000 if args.quick else 20_000
    print(f"codec: telemetry + pose stream, {2 * pairs} frames; 1 Mbaud link = "
          f"{LINK_BYTES_PER_S / 1e3:.0f} kB/s")  # fmt: skip
    for chunk in (4096, 64):
        for r in run_codec_bench(pairs=pairs, chunk=chunk):
            if chunk != 4096 and "encode" in r.name:
                continue
            print(
                f"  {r.name:<42} {r.frames_per_s:>11,.0f} frames/s {r.mbytes_per_s:>7.2f} MB/s"
                f"  {r.link_ratio:>6.1f} x link"
            )


def bench_link(args: argparse.Namespace) -> None:
    """Lockstep control periods per second through SerialRobot, pty and `roach sim`."""
    from firmware_bridge.link_bench import report_lines, run_link_bench

    for line in report_lines(run_link_bench(steps=50 if args.quick else 300)):
        print(line)


def bench_sim(args: argparse.Namespace) -> None:
    """Simulator cost of one 10 Hz control step and the real-time factor, one core."""
    from firmware_bridge.sim.bench import measure_speed, report_lines
    from firmware_bridge.sim.robot import SimRobot

    speed = measure_speed(SimRobot("", seed=0), sim_seconds=2.0 if args.quick else 11.0)
    for line in report_lines(speed):
        print(line)
