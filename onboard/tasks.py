"""Trajectory-following tasks and their planning cost (docs/robot.md).

A task is a path (a dense polyline) given in the robot's starting frame: origin at the
start position, x axis along the start heading, y to the left. ``make_task`` places it
in the world frame once, from the start state.

Cost of a predicted trajectory, summed over the predicted steps k = 1..H:
    w_distance * (distance from the path)                         [m]
  + w_progress * (backward progress along the path, s_{k-1} - s_k) [m]
  + w_heading  * |heading error to the path tangent|               [rad]
with docs/robot.md's weights 40 / 10 / 5 by default. Backward progress is signed: moving
forward along the path makes the term negative (a reward), so standing still on the
path is not optimal. The path runs on past its end as a ray along its final direction.
Positions are projected onto the part of the path within a window
around the robot's current progress, so a path that crosses itself (figure-8) or comes
back near its start (circle) is followed in order.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from onboard.jit import cached_njit
from robot_contract.errors import ConfigError

TASKS: tuple[str, ...] = ("straight", "left", "right", "zigzag", "circle", "figure8")
_X, _Y, _COS_YAW, _SIN_YAW = 0, 1, 10, 11
_ARC_STEP_M = 0.05
"""Arc chord length; the chord error is r * (1 - cos(step / 2r)), 0.3 mm at r = 1 m."""


@dataclass(frozen=True)
class TaskConfig:
    """Which path, its size and the cost weights (the ``[task]`` table of the config)."""

    name: str = field(default="straight", metadata={"choices": TASKS, "doc": "task"})
    """The path: straight, left, right, zigzag, circle, figure8."""
    scale_m: float = 1.0
    """Path size: straight length 5 x scale, turn and circle radius 1 x scale, the
    figure-8's two loops radius 0.5 x scale (as long as the circle), in metres."""
    w_distance: float = 40.0
    """Weight of the distance from the path, per metre per step."""
    w_progress: float = 10.0
    """Weight of backward progress along the path, per metre per step."""
    w_heading: float = 5.0
    """Weight of the heading error to the path tangent, per radian per step."""
    window_back_m: float = 0.3
    """Projection window behind the current progress, metres."""
    window_ahead_m: float = 1.5
    """Projection window ahead of the current progress, metres."""

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise ConfigError(f"task name {self.name!r} is not valid; valid: {', '.join(TASKS)}")
        if not (math.isfinite(self.scale_m) and 0 < self.scale_m <= 1000.0):
            raise ConfigError(f"task scale_m={self.scale_m} must be above 0 and at most 1000 m")
        for name in ("w_distance", "w_progress", "w_heading", "window_back_m"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"task {name}={getattr(self, name)} must be >= 0")
        if not self.window_ahead_m > 0:
            raise ConfigError(f"task window_ahead_m={self.window_ahead_m} must be > 0")


@dataclass(frozen=True)
class TrackPoint:
    """Where one state is relative to the path."""

    distance_m: float
    progress_m: float
    heading_error_rad: float


@dataclass(frozen=True)
class TrackingMetrics:
    """Summary of an episode's tracking, for reports."""

    n: int
    mean_distance_m: float
    max_distance_m: float
    progress_m: float
    progress_fraction: float
    mean_heading_error_rad: float


def path_points(name: str, scale_m: float = 1.0) -> np.ndarray:
    """The task's path in the starting frame, [P, 2] metres: straight parts as single
    segments, arcs as chords of at most 5 cm."""
    r = scale_m
    if name == "straight":
        return _line((0.0, 0.0), (5 * r, 0.0))
    if name in ("left", "right"):
        pts = np.concatenate(
            [
                _line((0.0, 0.0), (r, 0.0)),
                _arc((r, r), r, -math.pi / 2, 0.0)[1:],
                _line((2 * r, r), (2 * r, 4 * r))[1:],
            ]
        )
        return pts if name == "left" else pts * np.array([1.0, -1.0])
    if name == "zigzag":
        corners = [(i * r, 0.5 * r * (i % 2)) for i in range(7)]
        return np.concatenate(
            [_line(corners[0], corners[1])]
            + [_line(a, b)[1:] for a, b in itertools.pairwise(corners)]
        )
    if name == "circle":
        return _arc((0.0, r), r, -math.pi / 2, 3 * math.pi / 2)
    if name == "figure8":  # two loops of half the circle's radius: as long as the circle
        first = _arc((0.0, r / 2), r / 2, -math.pi / 2, 3 * math.pi / 2)
        second = _arc((0.0, -r / 2), r / 2, math.pi / 2, -3 * math.pi / 2)
        return np.concatenate([first, second[1:]])
    raise ConfigError(f"task {name!r} is not valid; valid: {', '.join(TASKS)}")


@dataclass
class Task:
    """A path placed in the world frame, its cost, and the tracking of the episode."""

    cfg: TaskConfig
    points: np.ndarray
    """[P, 2] world-frame path, metres."""
    seg_s0: np.ndarray = field(init=False)
    length_m: float = field(init=False)

    def __post_init__(self) -> None:
        d = np.diff(self.points, axis=0)
        self._seg = np.ascontiguousarray(
            np.column_stack([self.points[:-1], d, np.hypot(d[:, 0], d[:, 1])]), np.float64
        )  # [S, 5]: x0, y0, dx, dy, length
        self._seg_heading = np.arctan2(d[:, 1], d[:, 0])
        self.seg_s0 = np.concatenate([[0.0], np.cumsum(self._seg[:, 4])])
        self.length_m = float(self.seg_s0[-1])
        self.progress_m = 0.0
        self._reset_tracking()
        # Compile (or load from cache) the projection kernels now, not in the first tick.
        warm = np.zeros((1, 2, 24), np.float32)
        self.cost(warm)
        self.cost(warm.astype(np.float64))
        self.progress_m = 0.0

    @property
    def name(self) -> str:
        return self.cfg.name

    def reset(self) -> None:
        """Back to the start of the path; forgets the tracked states."""
        self.progress_m = 0.0
        self._reset_tracking()

    def _reset_tracking(self) -> None:
        # Running sums, not a list of points: an episode of any length holds constant memory.
        self._n = 0
        self._sum_distance = 0.0
        self._max_distance = -math.inf
        self._sum_heading = 0.0
        self._last_progress = 0.0

    def _window(self) -> tuple[int, int]:
        s = self.progress_m
        lo = int(np.searchsorted(self.seg_s0, s - self.cfg.window_back_m, "right")) - 1
        hi = int(np.searchsorted(self.seg_s0, s + self.cfg.window_ahead_m, "left"))
        n_seg = int(self._seg.shape[0])
        lo = min(max(lo, 0), n_seg - 1)  # past the end: the run-out ray (last segment)
        return lo, min(max(hi, lo + 1), n_seg)

    def _project_now(self, state: np.ndarray) -> TrackPoint:
        i_lo, i_hi = self._window()
        xy = np.asarray(state, np.float64)[None, [_X, _Y]]
        yaw = np.array([math.atan2(state[_SIN_YAW], state[_COS_YAW])])
        dist, s, herr = (np.empty(1), np.empty(1), np.empty(1))
        _project(xy, yaw, self._seg, self.seg_s0, self._seg_heading, i_lo, i_hi, dist, s, herr)
        if math.isfinite(dist[0]):  # a NaN state must not move the window back to the start
            self.progress_m = float(s[0])
        return TrackPoint(float(dist[0]), float(s[0]), float(herr[0]))

    def cost(self, predicted_states: np.ndarray) -> np.ndarray:
        """Cost [N] float64 of predicted trajectories [N, H+1, 24] (index 0 = current state).

        Also updates ``progress_m`` from the current state (the same for every candidate),
        which moves the projection window along the path. Non-finite costs become inf.
        """
        ps = predicted_states
        self._project_now(ps[0, 0])
        i_lo, i_hi = self._window()
        out = np.empty(ps.shape[0])
        c = self.cfg
        _trajectory_cost(
            ps, self._seg, self.seg_s0, self._seg_heading, i_lo, i_hi, self.progress_m,
            c.w_distance, c.w_progress, c.w_heading, out,
        )  # fmt: skip
        return out

    def track(self, state: np.ndarray) -> TrackPoint:
        """Projects the measured state [24] onto the path, records and returns it."""
        pt = self._project_now(state)
        self._n += 1
        self._sum_distance += pt.distance_m
        d, m = pt.distance_m, self._max_distance
        self._max_distance = d if (d > m or math.isnan(d)) and not math.isnan(m) else m
        self._sum_heading += pt.heading_error_rad
        self._last_progress = pt.progress_m
        return pt

    def metrics(self) -> TrackingMetrics:
        """Summary of every state given to ``track`` since the last reset."""
        n = self._n
        if not n:
            return TrackingMetrics(0, math.nan, math.nan, 0.0, 0.0, math.nan)
        return TrackingMetrics(
            n=n,
            mean_distance_m=self._sum_distance / n,
            max_distance_m=self._max_distance,
            progress_m=self._last_progress,
            progress_fraction=min(self._last_progress / self.length_m, 1.0),
            mean_heading_error_rad=self._sum_heading / n,
        )


def make_task(cfg: TaskConfig, start_state: np.ndarray) -> Task:
    """The task's path placed at the start state's position and heading (state [24])."""
    local = path_points(cfg.name, cfg.scale_m)
    s = np.asarray(start_state, np.float64)
    yaw = math.atan2(s[_SIN_YAW], s[_COS_YAW])
    rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    world = local @ rot.T + s[[_X, _Y]]
    return Task(cfg=cfg, points=np.ascontiguousarray(world))


def _line(a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    return np.array([a, b], np.float64)


def _arc(center: tuple[float, float], r: float, a0: float, a1: float) -> np.ndarray:
    n = max(math.ceil(abs(a1 - a0) * r / _ARC_STEP_M), 1)
    a = np.linspace(a0, a1, n + 1)
    return np.column_stack([center[0] + r * np.cos(a), center[1] + r * np.sin(a)])


@cached_njit()
def _project(  # pragma: no cover - compiled
    xy: np.ndarray,
    yaw: np.ndarray,
    seg: np.ndarray,
    seg_s0: np.ndarray,
    seg_heading: np.ndarray,
    i_lo: int,
    i_hi: int,
    dist: np.ndarray,
    s: np.ndarray,
    herr: np.ndarray,
) -> None:
    """Nearest point on segments i_lo..i_hi-1 for each point xy [m, 2] with heading yaw [m].

    Writes the distance (m), the arc length of the projection (m) and the absolute
    heading error to that segment's direction (rad, in [0, pi]).
    """
    for k in range(xy.shape[0]):
        best, best_s, best_i = _nearest(xy[k, 0], xy[k, 1], seg, seg_s0, i_lo, i_hi)
        dist[k] = math.sqrt(best)
        s[k] = best_s
        e = yaw[k] - seg_heading[best_i]
        e = (e + math.pi) % (2.0 * math.pi) - math.pi
        herr[k] = abs(e)


@cached_njit()
def _nearest(  # pragma: no cover - compiled
    px: float, py: float, seg: np.ndarray, seg_s0: np.ndarray, i_lo: int, i_hi: int
) -> tuple[float, float, int]:
    """(squared distance, arc length, segment index) of the nearest point on segments i_lo.."""
    best = np.inf
    best_s = np.nan
    best_i = i_lo
    for i in range(i_lo, i_hi):
        ln = seg[i, 4]
        t = 0.0
        if ln > 0.0:
            t = ((px - seg[i, 0]) * seg[i, 2] + (py - seg[i, 1]) * seg[i, 3]) / (ln * ln)
            # The last segment runs on as a ray along the final direction, so a robot
            # that reaches the end of the path keeps going straight instead of being
            # pulled back to the end point.
            t = max(t, 0.0) if i == seg.shape[0] - 1 else min(max(t, 0.0), 1.0)
        qx = seg[i, 0] + t * seg[i, 2] - px
        qy = seg[i, 1] + t * seg[i, 3] - py
        d2 = qx * qx + qy * qy
        if d2 < best:
            best = d2
            best_s = seg_s0[i] + t * ln
            best_i = i
    return best, best_s, best_i


@cached_njit()
def _trajectory_cost(  # pragma: no cover - compiled
    ps: np.ndarray,
    seg: np.ndarray,
    seg_s0: np.ndarray,
    seg_heading: np.ndarray,
    i_lo: int,
    i_hi: int,
    s_now: float,
    w_d: float,
    w_p: float,
    w_h: float,
    out: np.ndarray,
) -> None:
    """docs/robot.md cost of each trajectory ps [N, H+1, 24] into out [N] (see module docstring)."""
    n, h1 = ps.shape[0], ps.shape[1]
    for j in range(n):
        total = 0.0
        s_prev = s_now
        for k in range(1, h1):
            px = np.float64(ps[j, k, _X])
            py = np.float64(ps[j, k, _Y])
            d2, s_k, i_best = _nearest(px, py, seg, seg_s0, i_lo, i_hi)
            yaw = math.atan2(ps[j, k, _SIN_YAW], ps[j, k, _COS_YAW])
            e = (yaw - seg_heading[i_best] + math.pi) % (2.0 * math.pi) - math.pi
            total += w_d * math.sqrt(d2) + w_p * (s_prev - s_k) + w_h * abs(e)
            s_prev = s_k
        out[j] = total if math.isfinite(total) else np.inf
