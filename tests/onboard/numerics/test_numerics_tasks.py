"""Task paths have the expected shapes; the cost is low on the path and grows off it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from onboard.tasks import TASKS, Task, TaskConfig, make_task, path_points
from robot_contract.errors import ConfigError


def _state(x: float, y: float, yaw: float) -> np.ndarray:
    s = np.zeros(24)
    s[0], s[1] = x, y
    s[6] = s[8] = 1.0
    s[10], s[11] = math.cos(yaw), math.sin(yaw)
    return s


def _heading(p: np.ndarray, i: int) -> float:
    d = p[i + 1] - p[i]
    return math.atan2(d[1], d[0])


def test_every_task_starts_at_origin_along_x() -> None:
    """Each path starts at the origin heading along +x (within the zigzag's first leg angle)."""
    for name in TASKS:
        p = path_points(name)
        assert np.allclose(p[0], 0.0)
        assert abs(_heading(p, 0)) < math.radians(30), name


def test_path_shapes() -> None:
    """left ends facing +y, right mirrors it, circle and figure8 close, zigzag alternates."""
    left, right = path_points("left"), path_points("right")
    assert left[-1, 1] > 1.0 and _heading(left, len(left) - 2) == pytest.approx(math.pi / 2)
    assert np.allclose(right, left * [1, -1])
    circle = path_points("circle")
    assert np.allclose(circle[-1], 0.0, atol=1e-9) and circle[:, 1].min() > -1e-9
    f8 = path_points("figure8")
    assert np.allclose(f8[-1], 0.0, atol=1e-9)
    assert f8[:, 1].max() > 0.95 and f8[:, 1].min() < -0.95
    length = np.linalg.norm(np.diff(f8, axis=0), axis=1).sum()
    assert length == pytest.approx(np.linalg.norm(np.diff(circle, axis=0), axis=1).sum(), rel=1e-3)
    half = len(f8) // 2
    assert f8[: half - 5, 1].min() > -1e-6 and f8[half + 5 :, 1].max() < 1e-6
    zz = path_points("zigzag")
    assert zz[:, 0].max() == pytest.approx(6.0)
    for i in range(7):  # corners alternate between y = 0 and y = 0.5 (left of the start line)
        assert zz[np.argmin(np.abs(zz[:, 0] - i)), 1] == pytest.approx(0.5 * (i % 2), abs=0.01)
    straight = path_points("straight")
    assert np.allclose(straight[:, 1], 0.0) and straight[-1, 0] == pytest.approx(5.0)


def test_task_is_placed_in_the_start_frame() -> None:
    """A left turn started at (1, 2) facing +y turns towards -x in the world."""
    task = make_task(TaskConfig(name="left"), _state(1.0, 2.0, math.pi / 2))
    assert np.allclose(task.points[0], [1.0, 2.0])
    assert task.points[-1, 0] < 0.0


def test_cost_is_zeroish_on_path_and_grows_off_it() -> None:
    """On the path the distance and heading terms vanish; the cost grows with lateral offset."""
    task = make_task(TaskConfig(w_progress=0.0), _state(0.0, 0.0, 0.0))
    h = 5
    offsets = np.array([0.0, 0.05, 0.2, 0.5])
    ps = np.zeros((len(offsets), h + 1, 24), np.float32)
    ps[:] = _state(0.0, 0.0, 0.0)
    for k in range(1, h + 1):
        ps[:, k, 0] = 0.05 * k
        ps[:, k, 1] = offsets
    c = task.cost(ps)
    assert c[0] == pytest.approx(0.0, abs=1e-5)
    assert np.all(np.diff(c) > 0)
    assert c[2] == pytest.approx(40 * 0.2 * h, rel=1e-4)


def test_forward_progress_is_rewarded_and_heading_error_penalised() -> None:
    """Forward costs less than standing or backing up; a wrong heading costs more."""
    task = make_task(TaskConfig(name="straight"), _state(0.0, 0.0, 0.0))
    ps = np.zeros((4, 3, 24), np.float32)
    ps[:] = _state(0.5, 0.0, 0.0)
    task.track(ps[0, 0])
    ps[0, 1:, 0] = [0.6, 0.7]  # forward
    ps[2, 1:, 0] = [0.4, 0.3]  # backward
    ps[3, 1:, 0] = [0.6, 0.7]  # forward but facing sideways
    ps[3, 1:, 10], ps[3, 1:, 11] = 0.0, 1.0
    c = task.cost(ps)
    assert c[0] < c[1] < c[2] and c[3] == pytest.approx(c[0] + 2 * 5 * math.pi / 2, rel=1e-5)


def test_figure8_crossing_keeps_progress_in_order() -> None:
    """At the figure-8 crossing the tracked progress continues instead of jumping back."""
    task = make_task(TaskConfig(name="figure8"), _state(0.0, 0.0, 0.0))
    total = 0.0
    for p in task.points[::3]:
        # Heading along the path does not matter for progress; pass position only.
        pt = task.track(_state(float(p[0]), float(p[1]), 0.0))
        assert pt.progress_m >= total - 1e-9
        total = pt.progress_m
    m = task.metrics()
    assert m.progress_fraction > 0.98 and m.mean_distance_m < 1e-6


def test_bad_task_name_lists_valid_tasks() -> None:
    """An unknown task is a ConfigError naming every valid task."""
    with pytest.raises(ConfigError) as info:
        TaskConfig(name="spiral")
    assert all(t in str(info.value) for t in TASKS)


def test_path_runs_on_past_its_end() -> None:
    """Beyond the end of the straight path the robot is on the run-out ray: zero distance."""
    task = make_task(TaskConfig(name="straight"), _state(0.0, 0.0, 0.0))
    for x in np.arange(0.0, 7.01, 0.25):
        pt = task.track(_state(float(x), 0.0, 0.0))
    assert pt.distance_m == pytest.approx(0.0, abs=1e-9)
    assert pt.progress_m == pytest.approx(7.0)
    assert task.metrics().progress_fraction == 1.0


def _reference_nearest(
    task: Task, px: float, py: float, lo: int, hi: int
) -> tuple[float, float, int]:
    """The projection as a plain loop over the window's segments (float64 scalars), on the
    task's own segment table (x0, y0, dx, dy, length)."""
    best, best_s, best_i = math.inf, math.nan, lo
    last = len(task._seg) - 1
    for i in range(lo, hi):
        x0, y0, dx, dy, ln = (float(v) for v in task._seg[i])
        t = 0.0
        if ln > 0.0:
            t = ((px - x0) * dx + (py - y0) * dy) / (ln * ln)
            t = max(t, 0.0) if i == last else min(max(t, 0.0), 1.0)
        qx, qy = x0 + t * dx - px, y0 + t * dy - py
        d2 = qx * qx + qy * qy
        if d2 < best:
            best, best_s, best_i = d2, float(task.seg_s0[i]) + t * ln, i
    return best, best_s, best_i


def _reference_cost(task: Task, ps: np.ndarray) -> np.ndarray:
    """The module docstring's cost, one candidate, step and segment at a time, in the
    window and from the progress the task's last ``cost`` call used."""
    lo, hi = task._window()
    s_now = task.progress_m
    c, out = task.cfg, np.empty(len(ps))
    for j in range(len(ps)):
        total, s_prev = 0.0, s_now
        for k in range(1, ps.shape[1]):
            d2, s_k, i = _reference_nearest(task, float(ps[j, k, 0]), float(ps[j, k, 1]), lo, hi)
            yaw = math.atan2(float(ps[j, k, 11]), float(ps[j, k, 10]))
            e = (yaw - float(task._seg_heading[i]) + math.pi) % (2.0 * math.pi) - math.pi
            dist, back = math.sqrt(d2), s_prev - s_k
            total += c.w_distance * dist + c.w_progress * back + c.w_heading * abs(e)
            s_prev = s_k
        out[j] = total if math.isfinite(total) else math.inf
    return out


def _random_problem(name: str, seed: int) -> tuple[Task, np.ndarray]:
    """A task tracked to a random point of its path and 200 random 5-step trajectories
    around it (float32, as the rollout predicts them)."""
    rng = np.random.default_rng(seed)
    task = make_task(TaskConfig(name=name), _state(*rng.uniform(-2, 2, 2), rng.uniform(-3, 3)))
    upto = int(rng.integers(0, len(task.points)))
    for p in task.points[: upto + 1 : 2]:
        task.track(_state(float(p[0]), float(p[1]), 0.0))
    here = task.points[upto] + rng.normal(0.0, 0.03, 2)
    ps = np.zeros((200, 6, 24), np.float32)
    ps[:, 0] = _state(float(here[0]), float(here[1]), rng.uniform(-3, 3))
    steps = rng.normal(0.0, 0.04, (200, 5, 2)) + rng.normal(0.0, 0.02, 2)
    ps[:, 1:, :2] = here + np.cumsum(steps, axis=1)
    yaw = rng.uniform(-math.pi, math.pi, (200, 5))
    ps[:, 1:, 10], ps[:, 1:, 11] = np.cos(yaw), np.sin(yaw)
    return task, ps


@pytest.mark.parametrize("name", TASKS)
def test_cost_picks_the_plans_a_scalar_loop_picks(name: str) -> None:
    """On random problems the vectorised cost equals the scalar loop to float32 rounding of
    the heading (atan2 in the states' float32) and ranks the candidates alike: the same
    best and the same 50 best; with headings whose atan2 is exact it is bit for bit."""
    for seed in range(4):
        task, ps = _random_problem(name, seed)
        got = task.cost(ps)
        ref = _reference_cost(task, ps)
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)
        assert np.argmin(got) == np.argmin(ref)
        assert set(np.argsort(got)[:50]) == set(np.argsort(ref)[:50])
        ps[:, 1:, 10], ps[:, 1:, 11] = 1.0, 0.0  # heading 0 exactly
        got = task.cost(ps)
        assert np.array_equal(got, _reference_cost(task, ps))


@pytest.mark.parametrize("name", TASKS)
def test_tracking_projects_as_a_scalar_loop_does(name: str) -> None:
    """Distance, progress and heading error of tracked states equal the scalar loop's bit
    for bit, a non-finite state included (distance inf, progress NaN, window unmoved)."""
    task, ps = _random_problem(name, 7)
    for state in [ps[0, 0].astype(np.float64), *ps[:20, 3].astype(np.float64)]:
        lo, hi = task._window()
        d2, s, i = _reference_nearest(task, float(state[0]), float(state[1]), lo, hi)
        yaw = math.atan2(state[11], state[10])
        e = abs((yaw - float(task._seg_heading[i]) + math.pi) % (2.0 * math.pi) - math.pi)
        pt = task.track(state)
        assert (pt.distance_m, pt.progress_m, pt.heading_error_rad) == (math.sqrt(d2), s, e)
    before = task.progress_m
    pt = task.track(_state(math.nan, 0.0, 0.0))
    assert pt.distance_m == math.inf and math.isnan(pt.progress_m)
    assert task.progress_m == before


def test_non_finite_trajectories_cost_inf() -> None:
    """A trajectory with a NaN or infinite position or a NaN heading costs inf; the others
    cost what the scalar loop gives."""
    task, ps = _random_problem("circle", 3)
    ps[1, 2, 0] = np.nan
    ps[2, 4, 1] = np.inf
    ps[3, 1, 10] = np.nan
    got = task.cost(ps)
    assert np.all(got[1:4] == np.inf) and np.all(np.isfinite(got[4:]))
    np.testing.assert_allclose(got, _reference_cost(task, ps), rtol=0, atol=2e-5)
