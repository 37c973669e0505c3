"""The ``roach`` command line: one entry point, one module per subcommand.

Each subcommand lives in ``tools/cmd_<name>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when
their subcommand runs, so ``roach run`` on the robot never imports the simulator or
PyTorch. A ``RoachError`` becomes one line on stderr and its exit code; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from robot_contract.errors import RoachError

# name -> (module, one-line help). Kept here, not discovered, so `roach --help` is cheap.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tools.cmd_demo", "run the shipped model on the simulated robot, end to end"),
    "sim-check": ("tools.cmd_sim_check", "simulate open-loop commands and report what happened"),
    "sim-plot": ("tools.cmd_sim_plot", "plot one open-loop command under each condition family"),
    "sim": ("tools.cmd_sim", "software-in-the-loop fake robot behind a pseudo-terminal"),
    "collect": ("tools.cmd_collect", "collect rollouts in simulation into a dataset"),
    "train": ("tools.cmd_train", "train an MB or GrBAL dynamics model"),
    "sweep": ("tools.cmd_sweep", "train a grid of configurations and pick the best"),
    "export": ("tools.cmd_export", "export a trained model to ONNX for the robot"),
    "train-all": ("tools.cmd_train_all", "collect, train and export the shipped models"),
    "results": ("tools.cmd_results", "adaptation results table (docs/results.md)"),
    "run": ("tools.cmd_run", "the onboard controller: adapt, plan and drive the robot"),
    "eval": ("tools.cmd_eval", "score the controller on the simulated robot over many episodes"),
    "train-oracles": (
        "tools.cmd_train_oracles",
        "train the oracle models of the closed-loop suite",
    ),
    "replay": ("tools.cmd_replay", "replay a logged run offline"),
    "hil": ("tools.cmd_hil", "hardware-in-the-loop checks against a robot on a port"),
    "calibrate": ("tools.cmd_calibrate", "measure a new robot over the link, write its robot file"),
    "deploy": (
        "tools.cmd_deploy",
        "bundle, copy, verify and activate the onboard code on the robot",
    ),
    "bench": ("tools.cmd_bench", "benchmarks that print numbers"),
    "soak": (
        "tools.cmd_soak",
        "hours of simulated running in lockstep: memory, logged ticks, stalls",
    ),
}


EXTRA_OF_PACKAGE: dict[str, str] = {
    "torch": "train",
    "tqdm": "train",
    "mujoco": "sim",
    "gymnasium": "sim",
    "matplotlib": "sim",
    "ray": "cluster",
    "foxglove": "live",
    "motioncapture": "mocap",
    "onnxruntime": "onboard",
    "onnx": "onboard",
    "serial": "onboard",
    "mcap": "onboard",
}
"""Top-level import name -> the pyproject extra that installs it (``pip install -e '.[X]'``)."""
ROBOT_COMMANDS = ("run", "hil", "collect --port", "calibrate", "replay", "deploy")
"""What the robot's install (the ``onboard`` extra alone) runs."""


def missing_extra_line(command: str, exc: ModuleNotFoundError) -> str | None:
    """The one-line error for a package an extra would install, or None if ``exc`` is
    not one (a bug, to be seen as a traceback)."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_PACKAGE.get(top)
    if extra is None:
        return None
    robot = "" if extra == "onboard" else f"; the robot's install runs {', '.join(ROBOT_COMMANDS)}"
    return (
        f"roach {command}: error: needs the '{extra}' extra (package {top!r} is not "
        f"installed): pip install -e '.[{extra}]'{robot}"
    )


class _OneLineParser(argparse.ArgumentParser):
    """A subcommand's parser whose mistakes are one line on stderr, exit code 2 (no usage
    block: ``roach <command> --help`` shows it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roach", description="GrBAL online adaptation for a small legged robot."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(
                f"roach: error: unknown command {argv[0]!r}; valid: {', '.join(SUBCOMMANDS)}",
                file=sys.stderr,
            )
            return 2
        top.print_help()
        return 0 if argv else 2
    name = argv[0]
    module_name, help_text = SUBCOMMANDS[name]
    for i, word in enumerate(argv[1:], 1):
        if "\x00" in word:  # no shell can pass one; a path with it cannot be opened
            print(f"roach {name}: error: argument {i} contains a NUL byte", file=sys.stderr)
            return 2
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        line = missing_extra_line(name, exc) or (
            f"roach: error: command {name!r} needs the missing package {exc.name!r} "
            "(install the matching extra, e.g. pip install -e '.[dev]')"
        )
        print(line, file=sys.stderr)
        return 2
    parser = _OneLineParser(prog=f"roach {name}", description=help_text)
    module.add_arguments(parser)
    try:
        args = parser.parse_args(argv[1:])
    except SystemExit as exc:  # --help, or a one-line argument error (exit code 2)
        return int(exc.code or 0)
    args.argv = argv[1:]  # the command's own words, for records of how a result was made
    try:
        return int(module.run(args) or 0)
    except RoachError as exc:
        print(f"roach {name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"roach {name}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # an extra this install lacks, imported on demand
        missing = missing_extra_line(name, exc)
        if missing is None:
            raise
        print(missing, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
