"""``roach replay LOG``: what a logged run did, and how adaptation predicted, offline.

Reads every complete tick of a log (also one cut short by a crash), prints a summary
(ticks, events, timings, tracking) and, with a model (by default the one the run used),
the adaptation replay of onboard/replay.py: per tick, the window loss before and after
the adaptation step and the error on the next transition with the meta-learned and the
adapted parameters.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from mcap.exceptions import McapError

from onboard.adaptation import CHANGE_GAIN, CHANGE_ROWS, MODES, Adapter
from onboard.blas import set_blas_threads
from onboard.config import ControllerConfig
from onboard.logging_mcap import RunLog, jsonable, read_log
from onboard.loop import load_controller_model
from onboard.model import load_model
from onboard.replay import replay_adaptation, replay_summary, replay_totals, summary_text
from onboard.replay_check import check_log, logged_config
from onboard.replay_outputs import plot_log, write_dataset
from robot_contract.errors import ConfigError
from tools.argtypes import int_in

HELP = "replay a logged run offline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", help="MCAP log written by `roach run`")
    parser.add_argument("--model", help="model file (default: the one the run used)")
    parser.add_argument("--mode", help=f"adaptation mode: {', '.join(MODES)} (default: the run's)")
    parser.add_argument("--M", type=int_in(1, 1000), help="adaptation window (default: the run's)")
    parser.add_argument("--quiet", action="store_true", help="summary only, no per-tick table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="re-run the controller on the logged inputs; exit 1 unless every command is "
        "reproduced exactly (names the first tick that is not)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON here")
    parser.add_argument(
        "--plot", metavar="OUT.png", help="path vs target, commands, adaptation loss, step times"
    )
    parser.add_argument(
        "--to-dataset", metavar="DIR", help="write the logged transitions as a training dataset"
    )


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
    if args.to_dataset:
        n_ep, n_tr = write_dataset(log, path, Path(args.to_dataset))
        print(f"dataset {args.to_dataset}: {n_ep} episodes, {n_tr} transitions")
    if args.check:
        return _check(args, log)
    run_info = log.run or {}
    model_path = args.model or run_info.get("model", {}).get("path")
    if not model_path:
        print("adaptation replay: no model (give --model)")
        return 0
    run_adapt = run_info.get("adaptation", {})
    mode = args.mode or run_adapt.get("mode", "grbal")
    m_window = args.M or run_adapt.get("M")
    model = load_model(model_path)
    # The run's step and change rule (a log from before the rule: the rule off).
    same_mode = mode == run_adapt.get("mode")
    adapter = Adapter(
        model,
        mode,
        M=m_window,
        inner_lr=run_adapt.get("inner_lr") if same_mode else None,
        change_ratio=float(run_adapt.get("change_ratio", 0.0)),
        change_rows=int(run_adapt.get("change_rows", CHANGE_ROWS)),
        change_gain=float(run_adapt.get("change_gain", CHANGE_GAIN)),
    )
    rows = replay_adaptation(log.ticks, adapter)
    if not args.quiet:
        print("tick  n   window_before  window_after  next_meta  next_adapted")
        for r in rows:
            print(
                f"{r.tick:4d} {r.n:3d}  {r.window_before:13.4g}  {r.window_after:12.4g}  "
                f"{r.next_meta:9.4g}  {r.next_adapted:12.4g}"
            )
    print(replay_summary(rows, model_path, mode, adapter.M))
    if args.json:
        _write_json(args.json, {"adaptation": [asdict(r) for r in rows],
                                "total": replay_totals(rows)})  # fmt: skip
    if args.plot:
        cfg = logged_config(log) if log.run else ControllerConfig()
        title = f"{path.name}: {Path(model_path).name}, mode {mode}"
        plot_log(log, cfg, rows, Path(args.plot), title)
        print(f"plot: {args.plot}")
    return 0


def _check(args: argparse.Namespace, log: RunLog) -> int:
    """``--check``: exit 0 when every command is reproduced, 1 when one is not."""
    cfg = logged_config(log)
    model_path = args.model or (log.run or {}).get("model", {}).get("path")
    if not model_path:
        raise ConfigError("the log names no model; give --model")
    set_blas_threads(cfg.loop.blas_threads)
    model = load_controller_model(model_path, cfg)
    result = check_log(log, model)
    print(result.describe())
    if args.json:
        _write_json(args.json, {"check": result.as_dict()})
    return 0 if result.exact else 1


def _write_json(out: str, data: dict) -> None:
    try:
        Path(out).write_text(json.dumps(jsonable(data), indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--json {out}: cannot write ({exc.strerror or exc})") from None
