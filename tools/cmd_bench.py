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
    import time

    from firmware_bridge.serial_robot import SerialRobot
    from tools.fake_process import running_fake

    steps = 50 if args.quick else 300
    latencies = []
    with (
        running_fake("--clock", "lockstep", stderr=None) as (_proc, path),
        SerialRobot(path) as robot,
    ):
        robot.start_telemetry(10)
        robot.start_motors()
        for _ in range(steps):
            t = time.monotonic()
            robot.set_leg_velocity(5.0, 5.0)
            if not robot.wait_for_sample(t, 5.0):
                raise RuntimeError("lockstep fake did not answer within 5 s")
            latencies.append(time.monotonic() - t)
    latencies.sort()
    total = sum(latencies)
    print(f"link: lockstep set_leg_velocity -> telemetry + pose over a pty, {steps} periods")
    print(
        f"  {steps / total:,.0f} control periods/s ({steps * 0.1 / total:.0f} x real time); "
        f"round trip median {latencies[len(latencies) // 2] * 1e3:.2f} ms, "
        f"max {latencies[-1] * 1e3:.2f} ms (includes 0.1 s of simulation per period)"
    )


def bench_sim(args: argparse.Namespace) -> None:
    """Simulator cost of one 10 Hz control step and the real-time factor, one core."""
    from firmware_bridge.sim.robot import SimRobot
    from tools.cmd_sim_check import _bench

    _bench(SimRobot("", seed=0), sim_seconds=2.0 if args.quick else 11.0)
