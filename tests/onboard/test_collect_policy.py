"""The parts of the robot-side collection (onboard/collect.py) without a robot: the held
random commands, the steer-back command, the session settings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from onboard.collect import CollectSettings, RandomHold, steer_toward


def test_random_commands_are_held_and_within_bounds() -> None:
    """Each draw is held for 1..5 steps, every command lies in [2, 9] rev/s, and the run
    lengths cover the whole hold range."""
    policy = RandomHold(np.random.default_rng(0), 2.0, 9.0, 1, 5)
    actions = np.array([policy.act() for _ in range(2000)])
    assert actions.min() >= 2.0 and actions.max() <= 9.0
    runs, n = [], 1
    for a, b in itertools.pairwise(actions):
        if np.array_equal(a, b):
            n += 1
        else:
            runs.append(n)
            n = 1
    assert set(runs) == {1, 2, 3, 4, 5}
    assert abs(np.mean(runs) - 3.0) < 0.2


def test_steer_turns_toward_the_centre() -> None:
    """Centre to the left: left leg slow; to the right: right leg slow; ahead: both fast."""
    assert steer_toward(1.0, 0.0, 0.0, (1.0, 1.0), 2.0, 9.0).tolist() == [2.0, 9.0]
    assert steer_toward(1.0, 0.0, 0.0, (1.0, -1.0), 2.0, 9.0).tolist() == [9.0, 2.0]
    assert steer_toward(1.0, 0.0, math.pi, (0.0, 0.0), 2.0, 9.0).tolist() == [9.0, 9.0]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"arena_radius_m": 0.3, "arena_margin_m": 0.5}, "need 0 < margin < radius"),
        ({"hold_min": 3, "hold_max": 2}, "need 1 <= min <= max"),
        ({"label": "turf/2"}, "letters, digits"),
    ],
)
def test_bad_settings_are_refused(kw: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        CollectSettings(**kw)
