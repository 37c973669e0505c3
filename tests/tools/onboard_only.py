"""``python tests/tools/onboard_only.py ARGS``: runs ``roach ARGS`` as the robot's install
would, with only the ``onboard`` extra's packages importable (every package of the other
extras refuses to import, as it would if it were not installed)."""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path

OTHER_EXTRAS = frozenset(
    {"torch", "tqdm", "mujoco", "gymnasium", "matplotlib", "ray", "foxglove", "motioncapture",
     "websockets", "hypothesis", "pytest"}
)  # fmt: skip


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in OTHER_EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _NotInstalled())
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tools.cli import main

    sys.exit(main(sys.argv[1:]))
