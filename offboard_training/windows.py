"""Episodes -> normalised transition tensors and (M past + K future) window indices.

All transitions of a split are stacked into one [N, 24] array; a window is the start
index of ``M + K`` consecutive transitions inside one episode (windows never straddle
two episodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from offboard_training.dataset import Episode
from offboard_training.model import Normalizer


@dataclass(frozen=True)
class Transitions:
    """``xn`` [N, 24] and ``yn`` [N, 24] normalised, float32; ``episode_starts`` [E+1]."""

    xn: torch.Tensor
    yn: torch.Tensor
    episode_starts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.xn.shape[0])

    def window_starts(self, length: int, stride: int = 1) -> np.ndarray:
        """Global start indices of every ``length``-long window inside one episode, [W]."""
        starts = []
        for a, b in zip(self.episode_starts[:-1], self.episode_starts[1:]):
            if b - a >= length:
                starts.append(np.arange(a, b - length + 1, stride))
        return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)

    def gather(self, starts: np.ndarray, M: int, K: int) -> tuple[torch.Tensor, ...]:
        """(xn_past [W, M, 24], yn_past, xn_future [W, K, 24], yn_future) for ``starts``."""
        idx = torch.as_tensor(starts[:, None] + np.arange(M + K)[None, :], dtype=torch.long)
        x, y = self.xn[idx], self.yn[idx]
        return x[:, :M], y[:, :M], x[:, M:], y[:, M:]

    def gather_span(self, starts: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(xn [W, length, 24], yn [W, length, 24]) of the windows at ``starts``."""
        idx = torch.as_tensor(starts[:, None] + np.arange(length)[None, :], dtype=torch.long)
        return self.xn[idx], self.yn[idx]


def raw_arrays(episodes: Sequence[Episode]) -> tuple[np.ndarray, np.ndarray]:
    """Stacked raw inputs [N, 24] and deltas [N, 24] of ``episodes``."""
    return (
        np.concatenate([ep.inputs() for ep in episodes], axis=0),
        np.concatenate([ep.deltas() for ep in episodes], axis=0),
    )


def to_transitions(episodes: Sequence[Episode], norm: Normalizer) -> Transitions:
    x, d = raw_arrays(episodes)
    lengths = [ep.steps for ep in episodes]
    return Transitions(
        torch.as_tensor(norm.norm_inputs(x), dtype=torch.float32),
        torch.as_tensor(norm.norm_deltas(d), dtype=torch.float32),
        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
    )
