"""``roach sim-check``: run one open-loop command on the simulated robot and report what
happened (displacement, speed, yaw change, battery, leg rates) and the simulator's speed.

Examples:
  roach sim-check --left 6 --right 6 --seconds 2
  roach sim-check --condition "terrain=turf,missing_leg=RF@1" --left 6 --right 6
  roach sim-check --duty 2400 2400 --condition-file cond.toml
  roach sim-check --bench          # real-time factor on one core, random 10 Hz commands
"""

from __future__ import annotations

import argparse
import math

from firmware_bridge.records import DUTY_FULL_SCALE
from firmware_bridge.sim.conditions import Condition, load_condition_file, parse_condition
from robot_contract.errors import ConfigError
from tools.argtypes import SEED, float_in

HELP = "simulate open-loop commands and report what happened"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--condition", default="", help='e.g. "terrain=turf,missing_leg=RF@4"')
    src.add_argument("--condition-file", default=None, help="TOML file of condition keys")
    parser.add_argument(
        "--seconds", type=float_in(0, 3600, open_low=True), default=2.0, help="simulated time (s)"
    )
    parser.add_argument("--left", type=float, default=6.0, help="left leg setpoint (rev/s)")
    parser.add_argument("--right", type=float, default=6.0, help="right leg setpoint (rev/s)")
    parser.add_argument(
        "--duty", type=int, nargs=2, metavar=("LEFT", "RIGHT"), default=None,
        help="open-loop PWM duty (-4000..4000) instead of the leg-velocity PID",
    )  # fmt: skip
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument(
        "--bench", action="store_true",
        help="measure the real-time factor on one core (random 10 Hz leg-velocity commands)",
    )  # fmt: skip


def condition_from_args(args: argparse.Namespace) -> Condition:
    """The condition of ``--condition`` or ``--condition-file`` (raises ConfigError)."""
    if args.condition_file:
        return load_condition_file(args.condition_file)
    return parse_condition(args.condition)


def run(args: argparse.Namespace) -> int:
    condition = condition_from_args(args)
    if not 0.0 < args.seconds <= 3600.0:
        raise ConfigError(f"--seconds {args.seconds:g} is out of range; valid: 0..3600")
    if args.duty is not None and not all(
        -DUTY_FULL_SCALE <= d <= DUTY_FULL_SCALE for d in args.duty
    ):
        raise ConfigError(
            f"--duty {args.duty[0]} {args.duty[1]} is out of range; "
            f"valid: -{DUTY_FULL_SCALE}..{DUTY_FULL_SCALE} each"
        )
    from firmware_bridge.sim.bench import measure_speed, report_lines
    from firmware_bridge.sim.open_loop import run_open_loop
    from firmware_bridge.sim.robot import SimRobot  # mujoco loads once the input is valid

    robot = SimRobot(condition, seed=args.seed)
    if args.bench:
        for line in report_lines(measure_speed(robot)):
            print(line)
        return 0
    if args.duty is not None:
        res = run_open_loop(robot, args.seconds, duty=(args.duty[0], args.duty[1]))
        what = f"open-loop duty {args.duty[0]}/{args.duty[1]}"
    else:
        res = run_open_loop(robot, args.seconds, setpoints_rev_s=(args.left, args.right))
        what = f"leg setpoints {args.left:g}/{args.right:g} rev/s"
    end, tel0, tel = res.end_pose, res.start_telemetry, res.end_telemetry
    left_rev_s, right_rev_s = res.leg_rev_s
    print(f"condition: {str(condition) or '(nominal carpet)'}   seed {args.seed}")
    print(f"command:   {what} for {res.elapsed_s:.2f} s")
    print(f"displacement: forward {res.forward_m:+.3f} m, left {res.left_m:+.3f} m "
          f"(mean speed {res.mean_speed_m_s:.3f} m/s)")  # fmt: skip
    print(f"yaw change:   {math.degrees(res.yaw_change_rad):+.1f} deg (positive = turned left)")
    roll, pitch = math.degrees(end.roll), math.degrees(end.pitch)
    print(f"final pose:   x {end.x:+.3f} y {end.y:+.3f} z {end.z:.4f} m, "
          f"roll {roll:+.1f} pitch {pitch:+.1f} deg")  # fmt: skip
    print(f"legs:         left {left_rev_s:.2f} rev/s, right {right_rev_s:.2f} rev/s (mean); "
          f"duty {tel.left_duty}/{tel.right_duty}")  # fmt: skip
    print(f"battery:      {tel.battery_mv / 1000:.2f} V (start {tel0.battery_mv / 1000:.2f} V), "
          f"back-EMF {tel.bemf_left}/{tel.bemf_right} mV")  # fmt: skip
    print(f"speed:        {args.seconds / max(res.cpu_s, 1e-9):.0f} x real time on one core")
    return 0
