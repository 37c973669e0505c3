"""Fixtures for offboard training tests: a small dataset written in the real on-disk format.

The synthetic episodes follow a fixed smooth nonlinear map plus a per-episode hidden gain,
so there is something to fit and something to adapt to; the end-to-end test uses the real
simulator instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offboard_training.dataset import Episode, episode_filename, write_episode, write_manifest


def write_synthetic_dataset(
    folder: Path, episodes: int = 12, steps: int = 40, seed: int = 0
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((24, 24)) * 0.1
    entries = []
    for e in range(episodes):
        gain = rng.uniform(0.5, 1.5)
        s = np.zeros((steps + 1, 24))
        s[0] = rng.standard_normal(24) * 0.1
        a = rng.uniform(2.0, 9.0, (steps, 2))
        for t in range(steps):
            z = np.concatenate([s[t, 2:], a[t]])
            s[t + 1] = s[t] + 0.1 * np.tanh(A @ z) + 0.02 * gain * a[t].mean()
        terrain = ("carpet", "styrofoam", "turf")[e % 3]
        ep = Episode(s, a, f"terrain={terrain}", e)
        write_episode(folder / episode_filename(e), ep)
        entries.append({"file": episode_filename(e), "condition": ep.condition, "seed": e})
    write_manifest(folder, entries, {"seed": seed})
    return folder


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "data")
