"""``roach eval``: the onboard controller on the simulated robot over many episodes, scored.

Each episode is a fresh lockstep fake robot on a pty and the same controller ``roach run``
runs (offboard_training/closed_loop.py); the score is the published trajectory-following
cost on the simulator's true pose, plus distance, progress, and for ``@T`` conditions the
recovery time. Prints one line per (controller, task, condition) with the mean cost and
its 95 % interval over seeds; ``--json OUT`` writes every episode.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from pathlib import Path

from robot_contract.errors import ConfigError
from tools.argtypes import COUNT, SEED

HELP = "score the controller on the simulated robot over many episodes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="FILE[,FILE...][:MODE[:STEP]]",
        help="model file, optionally with its adaptation mode (grbal, dyn-eval, none) and "
        "step (e.g. models/mb.onnx:dyn-eval:0.05); repeat to compare. Several files joined "
        "by commas are one controller trained with different seeds: each episode runs with "
        "each file, paired by (file, seed). Without a mode: --mode, else dyn-eval (as roach "
        "run) for a GrBAL model and none for an MB model; without a step: 0.05 in dyn-eval, "
        "the file's in grbal",
    )
    parser.add_argument("--mode", help="adaptation mode for models given without one")
    parser.add_argument(
        "--oracle",
        metavar="DIR",
        help="also run each condition's oracle (MB trained on that condition, from "
        "roach train-oracles) where DIR holds one; labelled 'oracle'",
    )
    parser.add_argument(
        "--task", action="append", metavar="NAME", help="path to follow; repeat (default straight)"
    )
    parser.add_argument(
        "--condition",
        action="append",
        metavar="COND",
        help="simulator condition, e.g. 'missing_leg=RF@3' (docs/simulator.md); repeat; "
        "default: the nominal robot on carpet",
    )
    parser.add_argument("--suite", help="a named set of tasks and conditions instead: paper, smoke")
    parser.add_argument("--episodes", type=int, default=5, help="seeds per case (default 5)")
    parser.add_argument("--seed", type=SEED, default=0, help="first simulator seed (default 0)")
    parser.add_argument("--steps", type=COUNT, default=110, help="ticks per episode (default 110)")
    parser.add_argument(
        "--board",
        choices=("python", "c"),
        default="python",
        help="the fake robot's board logic, as for roach sim: python, or c (the C firmware in "
        "the loop)",
    )
    parser.add_argument("--config", help="controller TOML config, as for roach run")
    parser.add_argument("--jobs", type=int, default=1, help="episodes run in parallel")
    parser.add_argument(
        "--cluster",
        default="",
        metavar="ADDRESS",
        help="run the episodes on a Ray cluster instead of --jobs local processes: "
        "local, auto, HOST:PORT or ray://HOST:PORT (docs/cluster.md)",
    )
    parser.add_argument("--json", metavar="OUT", help="write every episode and summary here")
    parser.add_argument("--logs", metavar="DIR", help="keep every episode's MCAP log here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_models(specs: list[str], mode: str | None) -> list[tuple[str, str, float | None]]:
    """``FILE[:MODE[:STEP]]`` -> (file, mode, step or None); the default mode follows the
    model's algorithm (a GrBAL model adapts as ``roach run`` does by default, an MB model
    does not), the default step the mode's (onboard/adaptation.py)."""
    from onboard.adaptation import MODES
    from onboard.model import load_model

    out = []
    for spec in specs:
        path, suffix, step = spec, "", None
        head, _, last = spec.rpartition(":")
        if head and last in MODES:
            path, suffix = head, last
        else:
            head2, _, middle = head.rpartition(":")
            if head2 and middle in MODES:
                try:
                    step = float(last)
                except ValueError:
                    raise ConfigError(f"--model {spec!r}: step {last!r} is not a number") from None
                path, suffix = head2, middle
        files = path.split(",")
        for file in files:
            if not file:
                raise ConfigError(f"--model {spec!r}: empty file name in the comma-separated list")
            if not Path(file).is_file():
                raise ConfigError(f"--model {file!r}: no such model file")
        if len(set(files)) != len(files):
            raise ConfigError(f"--model {spec!r}: a file is listed twice")
        chosen = suffix or mode
        if chosen is None:
            chosen = "dyn-eval" if load_model(files[0]).meta.algorithm == "grbal" else "none"
        out.append((path, chosen, step))
    return out


def run(args: argparse.Namespace) -> int:
    from offboard_training import closed_loop as cl
    from onboard.config import load_config

    if not 1 <= args.steps <= 100_000:
        raise ConfigError(f"--steps {args.steps} out of range; valid: 1 to 100000")
    config = load_config(args.config)
    models = parse_models(args.model, args.mode)
    tasks = args.task or ["straight"]
    conditions = args.condition or [""]
    if args.suite:
        if args.suite not in cl.SUITES:
            raise ConfigError(f"--suite {args.suite!r} unknown; valid: {', '.join(cl.SUITES)}")
        if args.task or args.condition:
            raise ConfigError("give --suite or --task/--condition, not both")
        suite_tasks, pairs = cl.SUITES[args.suite]
        tasks, conditions = list(suite_tasks), [c for _, c in pairs]
    if args.cluster:
        from offboard_training.cluster import check_cluster

        check_cluster(args.cluster)
    cl.check_inputs(models, tasks, conditions)
    cases = cl.expand_cases(
        models, tasks, conditions, args.episodes, args.seed, args.steps, board=args.board
    )
    if args.oracle:
        cases += cl.oracle_cases(
            args.oracle, tasks, conditions, args.episodes, args.seed, args.steps, args.board
        )
    if args.json:
        _check_writable(Path(args.json))
    progress = None if args.quiet else cl.progress_printer()
    scores = cl.run_cases(
        cases, config, jobs=args.jobs, log_dir=args.logs, progress=progress, cluster=args.cluster
    )
    summaries = cl.summarise(scores)
    for line in cl.iter_table(summaries):
        print(line)
    names = cl.labels(scores)
    for other in names[1:]:
        for line in cl.comparison_lines(cl.compare(scores, names[0], other)):
            print(line)
    if args.json:
        from offboard_training.version import code_version

        doc = {
            "command": shlex.join(["roach", "eval", *args.argv]),
            "code_version": code_version(),
            "suite": args.suite or "",
            "conditions": conditions,
            "board": args.board,
            "planner": dataclasses.asdict(config.planner),
            "command_timing": config.loop.command_timing,
            "cases": len(cases),
            "summaries": [s.__dict__ for s in summaries],
            "comparisons": [
                c.__dict__ for other in names[1:] for c in cl.compare(scores, names[0], other)
            ],
            "episodes": [s.as_dict(traces=True) for s in scores],
        }
        Path(args.json).write_text(json.dumps(doc, indent=1, default=_plain))
        print(f"json: {args.json}")
    return 0


def _plain(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()  # type: ignore[attr-defined]
    return str(value)


def _check_writable(path: Path) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"--json {path}: folder {parent} does not exist")
    if path.is_dir():
        raise ConfigError(f"--json {path}: is a folder")
