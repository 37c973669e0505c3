"""Which clock a run uses, taken from the board's hello (docs/protocol.md).

The fake robot names its clock in HELLO_REPLY (``sim-lockstep`` or ``sim-realtime``; with
the C firmware in the loop ``sim-c-lockstep`` or ``sim-c-realtime``); a real motor board
has only the wall clock. ``roach run`` reads the hello before the controller is built and
picks the clock from it, so a lockstep fake needs no flag. A
clock asked for on the command line that differs from the board's is an error before
the robot moves: a lockstep loop on a realtime board would tick on 100 Hz samples, and
a realtime loop on a lockstep board would wait for samples that only a command brings.
"""

from __future__ import annotations

from collections.abc import Mapping

from robot_contract.errors import ConfigError

CLOCKS: tuple[str, ...] = ("auto", "realtime", "lockstep")
LOCKSTEP_NAMES: frozenset[str] = frozenset({"sim-lockstep", "sim-c-lockstep"})
"""The hello names of a board whose time advances one control period per command: the
fake with its Python board logic and with the C firmware in the loop."""


class ClockMismatchError(ConfigError):
    """The clock asked for is not the one the board runs."""


def board_clock(hello: Mapping[str, object]) -> str:
    """``lockstep`` for the fake's lockstep clock, else ``realtime`` (every real board)."""
    return "lockstep" if hello.get("name") in LOCKSTEP_NAMES else "realtime"


def pick_clock(hello: Mapping[str, object], asked: str, port: str = "the port") -> bool:
    """True for a lockstep run. ``asked``: one of CLOCKS; ``auto`` takes the board's.

    ClockMismatchError (one line, what to change) if ``asked`` is not the board's clock.
    """
    if asked not in CLOCKS:
        raise ConfigError(f"--clock {asked!r} is not valid; valid: {', '.join(CLOCKS)}")
    board = board_clock(hello)
    if asked not in ("auto", board):
        raise ClockMismatchError(
            f"the board on {port} runs a {board} clock (hello name {hello.get('name')!r}) "
            f"but a {asked} run was asked for: drop --clock/--lockstep (the clock is taken "
            f"from the board's hello) or start the fake with `roach sim --clock {asked}`"
        )
    return board == "lockstep"
