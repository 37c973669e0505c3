"""The latest transitions, as the contiguous window the adaptation step reads.

A transition is ``(s_t, a_t, s_{t+1})``: the state read at tick t, the command sent at
tick t, and the state read at tick t+1. Consecutive transitions share states, so the
buffer holds up to ``capacity + 1`` states and ``capacity`` actions. When the chain of
ticks breaks (a safe stop, stale data), the caller calls ``break_chain()`` so no
transition spans the gap.
"""

from __future__ import annotations

import numpy as np

from robot_contract.state import ACTION_DIM, STATE_DIM


class TransitionHistory:
    """Ring buffer of the latest ``capacity`` consecutive transitions.

    Storage is preallocated; ``window()`` returns views of it, valid until the next push.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._states = np.zeros((capacity + 1, STATE_DIM), dtype=np.float64)
        self._actions = np.zeros((capacity, ACTION_DIM), dtype=np.float64)
        self._n_states = 0  # states held, the newest at index capacity
        self._pending: np.ndarray = np.zeros(ACTION_DIM, dtype=np.float64)
        self._has_pending = False

    def __len__(self) -> int:
        """Number of complete transitions held (0 .. capacity)."""
        return max(0, self._n_states - 1)

    def push_state(self, state: np.ndarray) -> None:
        """Appends the state read this tick, shape (24,).

        If an action was recorded after the previous state, this completes a transition.
        A state with no action since the previous one starts a new chain.
        """
        if not self._has_pending:
            self._n_states = 0
        # Shift by one; the buffers are tens of rows, cheaper than index bookkeeping
        # and it keeps the window contiguous for the kernels.
        self._states[:-1] = self._states[1:]
        self._states[-1] = state
        if self._has_pending:
            self._actions[:-1] = self._actions[1:]
            self._actions[-1] = self._pending
        self._n_states = min(self._n_states + 1, self.capacity + 1)
        self._has_pending = False

    def push_action(self, action: np.ndarray) -> None:
        """Records the command sent this tick, shape (2,), rev/s (follows ``push_state``)."""
        if self._n_states == 0:
            return
        self._pending[:] = action
        self._has_pending = True

    def break_chain(self) -> None:
        """Forgets every transition (after a stop or a gap in the data)."""
        self._n_states = 0
        self._has_pending = False

    def window(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The latest ``min(n, len(self))`` transitions, oldest first.

        Returns ``states`` (k+1, 24) and ``actions`` (k, 2), where transition i is
        ``(states[i], actions[i], states[i+1])``. With k = 0 the one state row is the
        latest state (zeros if none was pushed), as ``Adapter.adapt`` expects.
        """
        k = len(self) if n is None else min(n, len(self))
        states = self._states[self.capacity - k :]
        actions = self._actions[self.capacity - k :]
        return states, actions
