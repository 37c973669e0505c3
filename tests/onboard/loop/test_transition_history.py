"""Transition ring buffer: consecutive windows, capacity, chain breaks."""

from __future__ import annotations

import numpy as np
import pytest

from onboard.history import TransitionHistory


def _s(i: float) -> np.ndarray:
    return np.full(24, i)


def _a(i: float) -> np.ndarray:
    return np.array([i, -i])


def test_window_pairs_each_state_with_the_action_sent_after_it() -> None:
    """Transition i is (states[i], actions[i], states[i+1]) in tick order, oldest first."""
    h = TransitionHistory(capacity=4)
    for t in range(3):
        h.push_state(_s(t))
        h.push_action(_a(t))
    h.push_state(_s(3))
    states, actions = h.window()
    assert len(h) == 3 and states.shape == (4, 24) and actions.shape == (3, 2)
    np.testing.assert_array_equal(states[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(actions[:, 0], [0, 1, 2])


def test_capacity_keeps_only_the_latest_transitions() -> None:
    """After more pushes than capacity, the window is the latest `capacity` transitions."""
    h = TransitionHistory(capacity=3)
    for t in range(10):
        h.push_state(_s(t))
        h.push_action(_a(t))
    h.push_state(_s(10))
    states, actions = h.window()
    np.testing.assert_array_equal(states[:, 0], [7, 8, 9, 10])
    np.testing.assert_array_equal(actions[:, 0], [7, 8, 9])
    s2, a2 = h.window(2)
    np.testing.assert_array_equal(s2[:, 0], [8, 9, 10])
    np.testing.assert_array_equal(a2[:, 0], [8, 9])


def test_break_chain_and_missing_action_start_a_new_chain() -> None:
    """No transition spans a break or a tick that sent no command."""
    h = TransitionHistory(capacity=5)
    h.push_state(_s(0))
    h.push_action(_a(0))
    h.push_state(_s(1))
    assert len(h) == 1
    h.break_chain()
    assert len(h) == 0 and h.window()[1].shape == (0, 2)
    h.push_state(_s(2))
    h.push_action(_a(2))
    h.push_state(_s(3))
    h.push_state(_s(4))  # no action after s3: s4 starts a new chain
    assert len(h) == 0
    states, actions = h.window()
    assert states.shape == (1, 24) and actions.shape == (0, 2)


def test_empty_window_and_bad_capacity() -> None:
    """An empty buffer gives no transitions (states [1, 24], actions [0, 2]); capacity < 1 fails."""
    h = TransitionHistory(capacity=2)
    states, actions = h.window()
    assert states.shape == (1, 24) and actions.shape == (0, 2)
    with pytest.raises(ValueError):
        TransitionHistory(0)
