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
import time
from typing import TYPE_CHECKING

import numpy as np

from firmware_bridge.records import DUTY_FULL_SCALE, ENCODER_COUNTS_PER_REV
from firmware_bridge.sim.conditions import Condition, load_condition_file, parse_condition
from robot_contract.errors import ConfigError
from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S, CONTROL_PERIOD_S

if TYPE_CHECKING:
    from firmware_bridge.sim.robot import SimRobot

HELP = "simulate open-loop commands and report what happened"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--condition", default="", help='e.g. "terrain=turf,missing_leg=RF@4"')
    src.add_argument("--condition-file", default=None, help="TOML file of condition keys")
    parser.add_argument("--seconds", type=float, default=2.0, help="simulated time (s)")
    parser.add_argument("--left", type=float, default=6.0, help="left leg setpoint (rev/s)")
    parser.add_argument("--right", type=float, default=6.0, help="right leg setpoint (rev/s)")
    parser.add_argument(
        "--duty", type=int, nargs=2, metavar=("LEFT", "RIGHT"), default=None,
        help="open-loop PWM duty (-4000..4000) instead of the leg-velocity PID",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
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
    from firmware_bridge.sim.robot import SimRobot  # mujoco loads once the input is valid
    from firmware_bridge.sim.sensors import wrap_pi

    robot = SimRobot(condition, seed=args.seed)
    if args.bench:
        return _bench(robot)
    start = robot.true_pose()
    tel0 = robot.telemetry()
    if args.duty is not None:
        robot.set_duty(*args.duty)
        what = f"open-loop duty {args.duty[0]}/{args.duty[1]}"
    else:
        robot.set_leg_velocity(args.left, args.right)
        what = f"leg setpoints {args.left:g}/{args.right:g} rev/s"
    # Step at the control period so the yaw change can be unwrapped past half a turn.
    turned, last_yaw, cpu = 0.0, start.yaw, 0.0
    remaining = args.seconds
    while remaining > 1e-9:
        dt = min(CONTROL_PERIOD_S, remaining)
        cpu0 = time.thread_time()
        robot.step(dt)
        cpu += time.thread_time() - cpu0
        remaining -= dt
        yaw = robot.true_pose().yaw
        turned += wrap_pi(yaw - last_yaw)
        last_yaw = yaw
    end = robot.true_pose()
    tel = robot.telemetry()
    heading = np.array([math.cos(start.yaw), math.sin(start.yaw)])
    delta = np.array([end.x - start.x, end.y - start.y])
    forward = float(delta @ heading)
    lateral = float(heading[0] * delta[1] - heading[1] * delta[0])
    dyaw = math.degrees(turned)
    rev = ENCODER_COUNTS_PER_REV
    print(f"condition: {str(condition) or '(nominal carpet)'}   seed {args.seed}")
    print(f"command:   {what} for {robot.time_s:.2f} s")
    print(f"displacement: forward {forward:+.3f} m, left {lateral:+.3f} m "
          f"(mean speed {math.hypot(*delta) / robot.time_s:.3f} m/s)")  # fmt: skip
    print(f"yaw change:   {dyaw:+.1f} deg (positive = turned left)")
    roll, pitch = math.degrees(end.roll), math.degrees(end.pitch)
    print(f"final pose:   x {end.x:+.3f} y {end.y:+.3f} z {end.z:.4f} m, "
          f"roll {roll:+.1f} pitch {pitch:+.1f} deg")  # fmt: skip
    print(f"legs:         left {(tel.left_pos - tel0.left_pos) / rev / robot.time_s:.2f} rev/s, "
          f"right {(tel.right_pos - tel0.right_pos) / rev / robot.time_s:.2f} rev/s (mean); "
          f"duty {tel.left_duty}/{tel.right_duty}")  # fmt: skip
    print(f"battery:      {tel.battery_mv / 1000:.2f} V (start {tel0.battery_mv / 1000:.2f} V), "
          f"back-EMF {tel.bemf_left}/{tel.bemf_right} mV")  # fmt: skip
    print(f"speed:        {args.seconds / max(cpu, 1e-9):.0f} x real time on one core")
    return 0


def _bench(robot: SimRobot, sim_seconds: float = 11.0, repeats: int = 5) -> int:
    """Random 10 Hz setpoints, an episode's length per repeat; best and median CPU time."""
    rng = np.random.default_rng(0)
    steps = round(sim_seconds / CONTROL_PERIOD_S)
    costs = []
    for rep in range(repeats):
        robot.reset(seed=rep)
        actions = rng.uniform(ACTION_LOW_REV_S, ACTION_HIGH_REV_S, (steps, 2))
        cpu0 = time.thread_time()
        for left, right in actions:
            robot.set_leg_velocity(left, right)
            robot.step(CONTROL_PERIOD_S)
            robot.telemetry()
            robot.pose()
        costs.append((time.thread_time() - cpu0) / steps)
    best, median = min(costs), float(np.median(costs))
    print(f"condition: {str(robot.condition) or '(nominal carpet)'}; {repeats} x {sim_seconds:g} s "
          "of random 10 Hz leg setpoints, CPU time of this thread")  # fmt: skip
    print(f"one 10 Hz control step: best {best * 1e3:.3f} ms, median {median * 1e3:.3f} ms")
    print(f"real-time factor: best {CONTROL_PERIOD_S / best:.0f}, "
          f"median {CONTROL_PERIOD_S / median:.0f}")  # fmt: skip
    return 0
