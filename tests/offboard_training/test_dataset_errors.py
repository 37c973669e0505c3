"""Malformed dataset folders: each corruption is one DatasetError line naming the bad file."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from offboard_training.dataset import MANIFEST, load_dataset
from offboard_training.errors import DatasetError

EPISODE = "ep_00001.npz"


def _good_arrays() -> dict[str, np.ndarray]:
    return {
        "states": np.zeros((5, 24)),
        "actions": np.full((4, 2), 5.0),
        "condition": np.array("terrain=carpet"),
        "seed": np.array(1),
        "policy": np.array("random"),
    }


def _episode(**change: np.ndarray | None) -> Callable[[Path], str]:
    """Rewrites ep_00001.npz with some arrays replaced (None = left out)."""

    def corrupt(folder: Path) -> str:
        arrays = {k: v for k, v in {**_good_arrays(), **change}.items() if v is not None}
        with open(folder / EPISODE, "wb") as f:  # a file object: np.savez adds no suffix
            np.savez(f, **arrays)
        return EPISODE

    return corrupt


def _manifest(edit: Callable[[dict], object]) -> Callable[[Path], str]:
    """Rewrites manifest.json with ``edit(manifest)`` as its JSON content."""

    def corrupt(folder: Path) -> str:
        manifest = json.loads((folder / MANIFEST).read_text())
        (folder / MANIFEST).write_text(json.dumps(edit(manifest)))
        return MANIFEST

    return corrupt


def _raw(name: str, data: bytes) -> Callable[[Path], str]:
    def corrupt(folder: Path) -> str:
        (folder / name).write_bytes(data)
        return name

    return corrupt


def _truncated(folder: Path) -> str:
    data = (folder / EPISODE).read_bytes()
    (folder / EPISODE).write_bytes(data[: len(data) // 2])
    return EPISODE


def _npy_not_npz(folder: Path) -> str:
    with open(folder / EPISODE, "wb") as f:
        np.save(f, np.zeros((5, 24)))
    return EPISODE


def _zip_without_arrays(folder: Path) -> str:
    with zipfile.ZipFile(folder / EPISODE, "w") as z:
        z.writestr("readme.txt", "hello")
    return EPISODE


def _nan(where: str) -> Callable[[Path], str]:
    a = _good_arrays()[where].copy()
    a[1, 1] = np.nan if where == "states" else np.inf
    return _episode(**{where: a})


CORRUPTIONS: dict[str, Callable[[Path], str]] = {
    # manifest.json
    "manifest_not_json": _raw(MANIFEST, b"{not json"),
    "manifest_not_utf8": _raw(MANIFEST, b"\xff\xfe\x00garbage"),
    "manifest_is_a_list": _manifest(lambda m: [m]),
    "manifest_version_string": _manifest(lambda m: {**m, "format_version": "1"}),
    "manifest_no_episodes": _manifest(lambda m: {k: v for k, v in m.items() if k != "episodes"}),
    "manifest_episodes_not_list": _manifest(lambda m: {**m, "episodes": {"a": 1}}),
    "manifest_file_not_string": _manifest(lambda m: {**m, "episodes": [{"file": 3}]}),
    "manifest_entry_not_object": _manifest(lambda m: {**m, "episodes": ["ep_00000.npz"]}),
    "manifest_info_not_object": _manifest(lambda m: {**m, "info": "seed 0"}),
    "manifest_state_names_reordered": _manifest(
        lambda m: {**m, "state_names": m["state_names"][::-1]}
    ),
    # episode files
    "npz_garbage": _raw(EPISODE, b"not a zip file at all" * 8),
    "npz_empty": _raw(EPISODE, b""),
    "npz_truncated": _truncated,
    "npz_is_npy": _npy_not_npz,
    "npz_zip_without_arrays": _zip_without_arrays,
    "npz_missing_actions": _episode(actions=None),
    "npz_missing_seed": _episode(seed=None),
    "states_wrong_width": _episode(states=np.zeros((5, 23))),
    "states_1d": _episode(states=np.zeros(24)),
    "actions_wrong_width": _episode(actions=np.zeros((4, 3))),
    "lengths_disagree": _episode(states=np.zeros((6, 24))),
    "no_transitions": _episode(states=np.zeros((1, 24)), actions=np.zeros((0, 2))),
    "states_strings": _episode(states=np.full((5, 24), "x")),
    "states_bool": _episode(states=np.zeros((5, 24), dtype=bool)),
    "actions_complex": _episode(actions=np.zeros((4, 2), dtype=complex)),
    "states_pickled_objects": _episode(states=np.array([{"a": 1}], dtype=object)),
    "seed_not_scalar": _episode(seed=np.array([1, 2])),
    "seed_float": _episode(seed=np.array(1.5)),
    "seed_string": _episode(seed=np.array("one")),
    "condition_number": _episode(condition=np.array(3.0)),
    "condition_list": _episode(condition=np.array(["a", "b"])),
    "policy_number": _episode(policy=np.array(7)),
    "states_nan": _nan("states"),
    "actions_inf": _nan("actions"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_malformed_dataset_is_one_line_dataset_error(
    synthetic_dataset: Path, tmp_path: Path, name: str
) -> None:
    """The corruption raises DatasetError: one line, naming the corrupted file."""
    folder = tmp_path / "data"
    shutil.copytree(synthetic_dataset, folder)
    bad_file = CORRUPTIONS[name](folder)
    with pytest.raises(DatasetError) as info:
        load_dataset([folder])
    message = str(info.value)
    assert "\n" not in message and str(folder / bad_file) in message, message


def test_intact_copy_loads(synthetic_dataset: Path, tmp_path: Path) -> None:
    """The uncorrupted copy loads (so each failure above is due to its corruption)."""
    folder = tmp_path / "data"
    shutil.copytree(synthetic_dataset, folder)
    _episode()(folder)
    episodes, summary = load_dataset([folder])
    assert summary["episodes"] == len(episodes) == 12 and episodes[1].seed == 1
