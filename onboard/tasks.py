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
        self._projector = _Projector(self._seg, self.seg_s0, self._seg_heading)

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
        yaw = math.atan2(state[_SIN_YAW], state[_COS_YAW])
        pt = self._projector.project_point(float(state[_X]), float(state[_Y]), yaw, i_lo, i_hi)
        if math.isfinite(pt.distance_m):  # a NaN state must not move the window back to the start
            self.progress_m = pt.progress_m
        return pt

    def cost(self, predicted_states: np.ndarray) -> np.ndarray:
        """Cost [N] float64 of predicted trajectories [N, H+1, 24] (index 0 = current state).

        Also updates ``progress_m`` from the current state (the same for every candidate),
        which moves the projection window along the path. Non-finite costs become inf.
        """
        ps = predicted_states
        self._project_now(ps[0, 0])
        i_lo, i_hi = self._window()
        return self._projector.trajectory_cost(ps, i_lo, i_hi, self.progress_m, self.cfg)

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


_MARGIN_M = 1e-9
"""Slack of the candidate-segment bound (``_Projector.candidates``) for rounding, metres."""


def _wrap_2pi(x: np.ndarray, mask: np.ndarray) -> None:
    """In place: x modulo 2 pi into [0, 2 pi), for x in (-2 pi, 4 pi) (a heading error
    plus pi: atan2 and the segment headings lie in [-pi, pi]).

    The same numbers as the floating-point remainder (Python's ``%``, ``np.remainder``)
    at a fraction of its time: on [2 pi, 4 pi) that is x - 2 pi, which is exact, and on
    (-2 pi, 0) x + 2 pi, rounded as here. NaN stays NaN. mask: bool work buffer shaped
    like x.
    """
    two_pi = 2.0 * math.pi
    np.greater_equal(x, two_pi, out=mask)
    np.subtract(x, two_pi, out=x, where=mask)
    np.less(x, 0.0, out=mask)
    np.add(x, two_pi, out=x, where=mask)


_PRUNE_FROM = 4
"""Windows of fewer segments are not pruned: the bound costs about what a segment does."""


class _PointWork:
    """Per-point buffers of ``_Projector`` for up to ``size`` points."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.floats = np.empty((8, size))
        """Rows: x, y, squared distance, arc length, gathered values, then the cost terms
        distance, backward progress and heading error."""
        self.row = np.empty(size, np.intp)
        """Each point's nearest row of the [K, M] arrays, then its flat index there."""
        self.seg = np.empty(size, np.intp)
        self.cols = np.arange(size)
        self.mask = np.empty(size, np.bool_)


class _Projector:
    """Nearest points on a window of the path's segments, for one point or many at once.

    The arithmetic per point and segment is the scalar formula's, in its order: the
    parameter t = ((p - a) . d) / |d|^2 clamped to [0, 1] ([0, inf) on the last segment,
    the run-out ray, so a robot past the end keeps going straight instead of being pulled
    back to the end point), q = a + t d - p, squared distance q . q; the nearest segment
    is the first one with the smallest squared distance. A point's distance, arc length
    and segment are therefore those of a loop over the segments, bit for bit (a point
    level with a vertex takes the same one of its two segments).

    Many points are one set of [segments, points] array operations (float64); before
    them, ``candidates`` drops the segments that cannot be the nearest to any of the
    points, which keeps about a third of the window on the circle (docs/performance.md).
    The work buffers grow to the largest call and are reused.
    """

    def __init__(self, seg: np.ndarray, seg_s0: np.ndarray, heading: np.ndarray) -> None:
        x0, y0, dx, dy, length = (np.ascontiguousarray(seg[:, c]) for c in range(5))
        t_max = np.ones(len(length))
        t_max[-1] = np.inf
        # A zero-length segment has dx = dy = 0; |d|^2 = 1 gives it t = 0, as the scalar
        # formula's special case does.
        sq_len = np.where(length > 0.0, length * length, 1.0)
        self._geom = np.stack([x0, y0, dx, dy, sq_len, t_max])
        """[6, S]: start x, start y, dx, dy, |d|^2 and t's upper bound of each segment."""
        self._length = length
        self._s0 = np.ascontiguousarray(seg_s0[:-1])
        self._heading = np.ascontiguousarray(heading)
        self._index = np.arange(len(length))
        self._rows = [
            (*g, float(s0), float(ln))
            for g, s0, ln in zip(self._geom.T.tolist(), self._s0, length, strict=True)
        ]
        """Per segment, as floats: the geometry, then arc length at the start and length."""
        self._pair = np.empty((3, 0))
        self._points = _PointWork(0)

    def _pair_work(self, k: int, m: int) -> np.ndarray:
        """[3, k, m] float64 work array, grown to fit."""
        if self._pair.shape[1] < k * m:
            self._pair = np.empty((3, k * m))
        return self._pair[:, : k * m].reshape(3, k, m)

    def _point_work(self, m: int) -> _PointWork:
        if self._points.size < m:
            self._points = _PointWork(m)
        return self._points

    def _squared_distances(
        self, px: np.ndarray | float, py: np.ndarray | float, sel: np.ndarray | slice, m: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """([K, M] squared distance, [K, M] clamped t) of the M points px, py ([M] or one
        point's floats) to the K segments ``sel`` (indices or a slice)."""
        geom = self._geom[:, sel]
        x0, y0, dx, dy, sq_len, t_max = (c[:, None] for c in geom)
        t, qy, d2 = self._pair_work(geom.shape[1], m)
        np.subtract(px, x0, out=t)
        np.subtract(py, y0, out=qy)
        t *= dx
        qy *= dy
        t += qy
        t /= sq_len
        np.clip(t, 0.0, t_max, out=t)
        np.multiply(t, dx, out=d2)  # q_x = (x0 + t dx) - px
        d2 += x0
        d2 -= px
        np.multiply(t, dy, out=qy)
        qy += y0
        qy -= py
        d2 *= d2
        qy *= qy
        d2 += qy
        return d2, t

    def candidates(self, px: np.ndarray, py: np.ndarray, i_lo: int, i_hi: int) -> np.ndarray:
        """The segments of i_lo..i_hi-1 (ascending) that can be the nearest to one of the
        points px, py [M].

        With c the centre of the points' bounding box and D its diagonal, every point p
        has |p - c| <= D / 2, so dist(p, s) >= dist(c, s) - D / 2 while p's nearest
        segment is at most dist(c, s_min) + D / 2 away: a segment with dist(c, s) >
        dist(c, s_min) + D is never the nearest and never ties with it. Non-finite points
        keep every segment.
        """
        window = self._index[i_lo:i_hi]
        if len(window) < _PRUNE_FROM:
            return window
        x_lo, x_hi, y_lo, y_hi = float(px.min()), float(px.max()), float(py.min()), float(py.max())
        cx, cy = 0.5 * (x_lo + x_hi), 0.5 * (y_lo + y_hi)
        d2, _ = self._squared_distances(cx, cy, slice(i_lo, i_hi), 1)
        dist = np.sqrt(d2[:, 0])
        reach = float(dist.min()) + math.hypot(x_hi - x_lo, y_hi - y_lo) + _MARGIN_M
        return window[~(dist > reach)]  # NaN compares False: every segment is kept

    def nearest(
        self, px: np.ndarray, py: np.ndarray, sel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(squared distance, arc length, segment index) [M] of each point's nearest
        segment of ``sel`` (ascending); views of the work buffers."""
        m = len(px)
        d2, t = self._squared_distances(px, py, sel, m)
        w = self._point_work(m)
        row, seg, s, gathered = w.row[:m], w.seg[:m], w.floats[3, :m], w.floats[4, :m]
        if len(sel) == 1:  # one segment: its rows are the answer
            i = int(sel[0])
            seg.fill(i)
            np.multiply(t[0], self._length[i], out=s)
            s += self._s0[i]  # s0 + t * length
            return d2[0], s, seg
        best, nearer = w.floats[2, :m], w.mask[:m]
        np.copyto(best, d2[0])
        row.fill(0)
        for k in range(1, len(sel)):  # the first smallest, as the loop over segments finds it
            np.less(d2[k], best, out=nearer)
            np.copyto(best, d2[k], where=nearer)
            np.copyto(row, k, where=nearer)
        np.take(sel, row, out=seg)
        row *= m
        row += w.cols[:m]  # the flat index of (row, point) in the [K, M] arrays
        np.take(t, row, out=s)
        s *= np.take(self._length, seg, out=gathered)
        s += np.take(self._s0, seg, out=gathered)
        return best, s, seg

    def project_point(self, x: float, y: float, yaw: float, i_lo: int, i_hi: int) -> TrackPoint:
        """Distance (m), arc length (m) and absolute heading error (rad, in [0, pi]) of the
        point (x, y) heading ``yaw`` to its nearest segment of i_lo..i_hi-1.

        A point at no finite distance from any segment (a NaN or infinite position) is at
        distance inf with arc length NaN, on segment i_lo.
        """
        best, s, i = self._nearest_one(x, y, i_lo, i_hi)
        e = (yaw - float(self._heading[i]) + math.pi) % (2.0 * math.pi) - math.pi
        return TrackPoint(math.sqrt(best), s, abs(e))

    def _nearest_one(self, x: float, y: float, i_lo: int, i_hi: int) -> tuple[float, float, int]:
        """(squared distance, arc length, segment) of the point's nearest segment of
        i_lo..i_hi-1: ``_squared_distances``' arithmetic as a loop over Python floats, which
        for one point is faster than the arrays up to about 30 segments (numpy's cost per
        call is what one point pays)."""
        best, best_s, best_i = math.inf, math.nan, i_lo
        for i in range(i_lo, i_hi):
            x0, y0, dx, dy, sq_len, t_max, s0, length = self._rows[i]
            t = min(max(((x - x0) * dx + (y - y0) * dy) / sq_len, 0.0), t_max)
            qx, qy = x0 + t * dx - x, y0 + t * dy - y
            d2 = qx * qx + qy * qy
            if d2 < best:  # NaN never is: a NaN point keeps inf, NaN, i_lo
                best, best_s, best_i = d2, s0 + t * length, i
        return best, best_s, best_i

    def trajectory_cost(
        self, ps: np.ndarray, i_lo: int, i_hi: int, s_now: float, cfg: TaskConfig
    ) -> np.ndarray:
        """The module docstring's cost [N] of trajectories ps [N, H+1, 24] (float32 or
        float64) against segments i_lo..i_hi-1, with the progress counted from ``s_now``.

        Points are laid out step-major ([H, N] flattened), so each candidate's terms add
        up in step order. The heading is atan2 in the states' precision.
        """
        n, h = ps.shape[0], ps.shape[1] - 1
        m = n * h
        w = self._point_work(m)
        px, py = w.floats[0, :m], w.floats[1, :m]
        np.copyto(px.reshape(h, n), ps[:, 1:, _X].T)
        np.copyto(py.reshape(h, n), ps[:, 1:, _Y].T)
        # Blown-up predictions give inf/NaN terms, whose costs become inf below.
        with np.errstate(invalid="ignore", over="ignore"):
            d2, s, seg = self.nearest(px, py, self.candidates(px, py, i_lo, i_hi))
            dist, back, herr = (w.floats[r, :m].reshape(h, n) for r in (5, 6, 7))
            np.sqrt(d2.reshape(h, n), out=dist)
            s = s.reshape(h, n)
            np.subtract(s_now, s[0], out=back[0])  # s_{k-1} - s_k
            np.subtract(s[:-1], s[1:], out=back[1:])
            np.arctan2(ps[:, 1:, _SIN_YAW].T, ps[:, 1:, _COS_YAW].T, out=herr, dtype=ps.dtype)
            herr -= np.take(self._heading, seg, out=w.floats[4, :m]).reshape(h, n)
            herr += math.pi
            _wrap_2pi(herr, w.mask[:m].reshape(h, n))
            herr -= math.pi
            np.abs(herr, out=herr)
            dist *= cfg.w_distance
            back *= cfg.w_progress
            herr *= cfg.w_heading
            dist += back
            dist += herr
            out = np.add.reduce(dist, axis=0)
        out[~np.isfinite(out)] = np.inf
        return out
