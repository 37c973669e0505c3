"""``roach replay LOG``: what a logged run did, and how adaptation predicted, offline.

Reads every complete tick of a log (also one cut short by a crash), prints a summary
(ticks, events, timings, tracking) and, with a model (by default the one the run used),
the adaptation replay of onboard/replay.py: per tick, the window loss before and after
the adaptation step and the error on the next transition with the meta-learned and the
adapted parameters.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mcap.exceptions import McapError

from onboard.adaptation import MODES, Adapter
from onboard.logging_mcap import read_log
from onboard.model import load_model
from onboard.replay import replay_adaptation, replay_summary, summary_text
from robot_contract.errors import ConfigError
from tools.argtypes import int_in

HELP = "replay a logged run offline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", help="MCAP log written by `roach run`")
    parser.add_argument("--model", help="model file (default: the one the run used)")
    parser.add_argument("--mode", help=f"adaptation mode: {', '.join(MODES)} (default: the run's)")
    parser.add_argument("--M", type=int_in(1, 1000), help="adaptation window (default: the run's)")
    parser.add_argument("--quiet", action="store_true", help="summary only, no per-tick table")


def run(args: argparse.Namespace) -> int:
    path = Path(args.log)
    if path.is_dir():
        raise ConfigError(f"log {path}: is a directory, not a log file")
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no such file"
        raise ConfigError(f"log {path}: {what}")
    if path.stat().st_size == 0:
        raise ConfigError(f"log {path}: empty file (the run wrote nothing)")
    try:
        log = read_log(path)
    except McapError as exc:
        raise ConfigError(f"log {path}: not an MCAP log ({type(exc).__name__})") from None
    if log.run is None and not log.ticks:
        raise ConfigError(f"log {path}: no run record and no ticks (not a roach run log)")
    print(summary_text(path, log))
    run_info = log.run or {}
    model_path = args.model or run_info.get("model", {}).get("path")
    if not model_path:
        print("adaptation replay: no model (give --model)")
        return 0
    mode = args.mode or run_info.get("adaptation", {}).get("mode", "grbal")
    m_window = args.M or run_info.get("adaptation", {}).get("M")
    model = load_model(model_path)
    adapter = Adapter(model, mode, M=m_window)
    rows = replay_adaptation(log.ticks, adapter)
    if not args.quiet:
        print("tick  n   window_before  window_after  next_meta  next_adapted")
        for r in rows:
            print(
                f"{r.tick:4d} {r.n:3d}  {r.window_before:13.4g}  {r.window_after:12.4g}  "
                f"{r.next_meta:9.4g}  {r.next_adapted:12.4g}"
            )
    print(replay_summary(rows, model_path, mode, adapter.M))
    return 0
