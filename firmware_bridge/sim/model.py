"""The MuJoCo model of the robot (MJCF built in code) and its physical constants.

Body frame: x forward, y left, z up. Six C-shaped legs, each a hinge about the body's y
axis at a hip on the side of the body. Positive leg rotation swings the lowest point of
the leg backwards, so it pushes the body forward; one motor per side drives the front leg
joint, and a stiff linkage (a fixed-tendon spring per follower leg) makes the middle and rear
legs of that side follow it. A spring rather than an equality constraint because it costs
no constraint-solver work, which is a third of the step time here.
The middle leg's C is mounted half a turn round from the front and rear ones, and the right
side half a turn from the left, so at q_left = q_right the legs form the two alternating
tripods (LF+LR+RM and RF+RR+LM).

The ground is a level plane that the body touches, plus one plane per leg that only that
leg touches; terrain.py moves those to the height and tilt of the rough ground under
each leg (all level at zero roughness).
"""

from __future__ import annotations

import itertools
import math

import mujoco

from firmware_bridge.sim.conditions import LEG_NAMES

# Rigid-body numbers (SI units).
BODY_HALF_SIZE_M = (0.045, 0.018, 0.006)
"""Torso box half-extents: a 9 cm x 3.6 cm x 1.2 cm shell (10 cm with the legs)."""
TORSO_MASS_KG = 0.020
SKID_MASS_KG = 0.0005
SKID_LENGTH_M = 0.025
"""A wire skid out of each end of the body at hip height: it touches the ground once the
body pitches about 15 degrees, so a pull from behind or a heavy payload at one end makes
the robot rear up onto it instead of flipping over."""
LEG_MASS_KG = 0.0015
"""Six legs make the total 30 g."""
HIP_X_M = {"F": 0.034, "M": 0.0, "R": -0.034}
HIP_Y_M = 0.026
HIP_Z_M = -0.002
LEG_RADIUS_M = 0.013
LEG_OFFSET_M = 0.004
"""Arc radius of a leg and how far its centre sits from the hip: the hip rides between
LEG_RADIUS_M - LEG_OFFSET_M and LEG_RADIUS_M + LEG_OFFSET_M above the ground."""
LEG_ARC_RAD = math.radians(200.0)
LEG_THICKNESS_M = 0.0016
LEG_SEGMENTS = 5
LINKAGE_STIFFNESS_NM_RAD = 0.1
LINKAGE_DAMPING_NMS_RAD = 8e-4
"""The side's linkage: 0.01 N m (about half the stall torque) twists a follower 0.1 rad."""
MOTOR_ARMATURE_KG_M2 = 4e-6
"""Rotor inertia reflected through the gearbox to the leg shaft."""

TIMESTEP_S = 0.0025
"""Physics step. The PID lives inside the physics (see robot.py), so its Kp and Kd terms
are evaluated every step: 400 Hz here against the firmware's 1 kHz (the Ki integral is
updated every robot.CHUNK_S; docs/simulator.md compares step sizes)."""


def _leg_xml(name: str, side_sign: float, phase_rad: float) -> str:
    """One leg body: an arc of LEG_RADIUS_M spanning LEG_ARC_RAD, centred LEG_OFFSET_M
    below the hip (an eccentric half wheel, like a C-leg rolling on its outside), made of
    capsules and rotated by ``phase_rad`` about the hip axis."""
    r, e = LEG_RADIUS_M, LEG_OFFSET_M
    c, s = math.cos(phase_rad), math.sin(phase_rad)
    pts = []
    for i in range(LEG_SEGMENTS + 1):
        t = -math.pi / 2 - LEG_ARC_RAD / 2 + LEG_ARC_RAD * i / LEG_SEGMENTS
        x, z = r * math.cos(t), -e + r * math.sin(t)
        pts.append((x * c + z * s, -x * s + z * c))  # rotation about +y
    bit = leg_contact_bit(name)
    geoms = "".join(
        f'<geom name="{name}_{i}" class="leg" conaffinity="{bit}" '
        f'fromto="{x0:.5f} 0 {z0:.5f} {x1:.5f} 0 {z1:.5f}"/>'
        for i, ((x0, z0), (x1, z1)) in enumerate(itertools.pairwise(pts))
    )
    hip = f"{HIP_X_M[name[1]]} {side_sign * HIP_Y_M} {HIP_Z_M}"
    return f'<body name="{name}" pos="{hip}"><joint name="{name}" class="hip"/>{geoms}</body>'


def leg_contact_bit(name: str) -> int:
    """Collision bit shared by a leg's geoms and the ground plane under that leg."""
    return 2 << LEG_NAMES.index(name)


def build_xml() -> str:
    """The robot's MJCF. Actuator gains and ranges are placeholders that SimRobot sets."""
    legs = []
    for name in LEG_NAMES:
        side_sign = 1.0 if name[0] == "L" else -1.0
        phase = (math.pi if name[1] == "M" else 0.0) + (math.pi if name[0] == "R" else 0.0)
        legs.append(_leg_xml(name, side_sign, phase))
    hx, hy, hz = BODY_HALF_SIZE_M
    leg_mass_each = LEG_MASS_KG / LEG_SEGMENTS
    linkage = "".join(
        f'<fixed name="{side}{pos}_link" stiffness="{LINKAGE_STIFFNESS_NM_RAD}" '
        f'damping="{LINKAGE_DAMPING_NMS_RAD}" springlength="0">'
        f'<joint joint="{side}F" coef="1"/><joint joint="{side}{pos}" coef="-1"/></fixed>'
        for side in "LR"
        for pos in "MR"
    )
    actuators = "".join(
        f'<general name="pid_{side}" joint="{side}F" dyntype="integrator" gainprm="0" '
        f'biastype="affine" biasprm="0 0 0"/>'
        f'<general name="ff_{side}" joint="{side}F" gainprm="0"/>'
        for side in "LR"
    )
    # Each leg's plane sits in its own static body: MuJoCo's broad phase then pairs it with
    # the legs by body, which costs a fifth less per step than six planes in the world body.
    leg_grounds = "".join(
        f'<body name="ground_{n}"><geom name="ground_{n}" type="plane" size="0 0 1" '
        f'priority="1" group="3" contype="{leg_contact_bit(n)}" conaffinity="0" condim="3" '
        f'rgba="0 0 0 0"/></body>'
        for n in LEG_NAMES
    )
    return f"""
<mujoco model="roach">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP_S}" integrator="implicitfast" cone="pyramidal"/>
  <size memory="2M"/>
  <default>
    <default class="leg">
      <geom type="capsule" size="{LEG_THICKNESS_M}" mass="{leg_mass_each}" contype="0"
            conaffinity="1" condim="3" rgba="0.15 0.15 0.15 1"/>
    </default>
    <default class="hip">
      <joint type="hinge" axis="0 1 0" armature="{MOTOR_ARMATURE_KG_M2 / 3}" damping="0"/>
    </default>
  </default>
  <worldbody>
    <geom name="ground" type="plane" size="0 0 1" priority="1" contype="1" conaffinity="0"
          condim="3" rgba="0.55 0.5 0.4 1"/>
    {leg_grounds}
    <light pos="0 0 2" dir="0 0 -1" directional="true"/>
    <body name="torso" pos="0 0 0.03">
      <freejoint name="root"/>
      <geom name="shell" type="box" size="{hx} {hy} {hz}" mass="{TORSO_MASS_KG}" contype="0"
            conaffinity="1" rgba="0.8 0.3 0.1 1"/>
      <geom name="tail" type="capsule" size="0.002" mass="{SKID_MASS_KG}" contype="0"
            conaffinity="1" fromto="{-hx} 0 0 {-hx - SKID_LENGTH_M} 0 0" rgba="0.2 0.2 0.2 1"/>
      <geom name="nose" type="capsule" size="0.002" mass="{SKID_MASS_KG}" contype="0"
            conaffinity="1" fromto="{hx} 0 0 {hx + SKID_LENGTH_M} 0 0" rgba="0.2 0.2 0.2 1"/>
      <body name="payload" pos="0 0 {hz + 0.004}">
        <inertial pos="0 0 0" mass="1e-9" diaginertia="1e-12 1e-12 1e-12"/>
      </body>
      {"".join(legs)}
    </body>
  </worldbody>
  <tendon>{linkage}</tendon>
  <actuator>{actuators}</actuator>
</mujoco>
"""


_MODEL_CACHE: dict[str, mujoco.MjModel] = {}


def make_model() -> mujoco.MjModel:
    """A fresh copy of the compiled model (compiled once per process)."""
    xml = build_xml()
    base = _MODEL_CACHE.get(xml)
    if base is None:
        base = _MODEL_CACHE[xml] = mujoco.MjModel.from_xml_string(xml)
    return copy_model(base)


def copy_model(model: mujoco.MjModel) -> mujoco.MjModel:
    import copy

    return copy.copy(model)
