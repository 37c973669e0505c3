"""``roach bench WHAT``: benchmarks that print numbers (never pass/fail on time).

Benchmarks register here by name as ``"module:function"``; the function takes the
parsed arguments and prints its own lines. ``all`` runs every one in order.
"""

from __future__ import annotations

import argparse
import importlib

HELP = "benchmarks that print numbers"

BENCHMARKS: dict[str, str] = {
    "codec": "tools.cmd_bench:bench_codec",
    "link": "tools.cmd_bench:bench_link",
    "sim": "tools.cmd_bench:bench_sim",
    "onboard": "tools.cmd_bench_onboard:run_benchmark",
    "cluster": "offboard_training.cluster_bench:run_benchmark",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=(*BENCHMARKS, "all"), help="which benchmark")
    parser.add_argument(
        "--quick", action="store_true", help="a smaller workload (for tests and smoke runs)"
    )


def run(args: argparse.Namespace) -> int:
    names = list(BENCHMARKS) if args.what == "all" else [args.what]
    for name in names:
        module_name, _, func = BENCHMARKS[name].partition(":")
        getattr(importlib.import_module(module_name), func)(args)
    return 0


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
