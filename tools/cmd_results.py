"""``roach results``: the adaptation table and the size sweep, written to docs/results.md."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from tools.argtypes import SEED

HELP = "adaptation results table (docs/results.md)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--models", type=Path, default=Path("models"), help="grbal/mb.onnx here")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("runs/train-all-seed0/data"),
        help="the shipped models' dataset (the sweep trains on it)",
    )
    parser.add_argument("--work", type=Path, default=Path("runs/results"))
    parser.add_argument("--eval-episodes", type=int, default=30, help="episodes per set")
    parser.add_argument("--sweep-minutes", type=float, default=20.0, help="0 = no sweep")
    parser.add_argument(
        "--reuse-sweep", action="store_true", help="take the sweep from WORK/sweep.json"
    )
    parser.add_argument(
        "--sweep-only", action="store_true", help="run the sweep into WORK/sweep.json and stop"
    )
    parser.add_argument(
        "--closed-loop",
        type=Path,
        metavar="JSON",
        help="a roach eval --json run of a suite (make results): its tables and plots "
        "become the first section",
    )
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--cluster",
        default="",
        metavar="ADDRESS",
        help="collect the evaluation sets and train the sweep on a Ray cluster: local, "
        "auto, HOST:PORT or ray://HOST:PORT (docs/cluster.md)",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from offboard_training.export import read_onnx
    from offboard_training.results import (
        SweepRow,
        collect_eval_sets,
        evaluate_model,
        results_markdown,
        run_sweep,
        window_episodes,
    )
    from robot_contract.errors import ConfigError

    if args.eval_episodes < 1 or args.sweep_minutes < 0:
        raise ConfigError("--eval-episodes must be >= 1 and --sweep-minutes >= 0")
    progress = not args.no_progress
    if args.cluster:
        from offboard_training.cluster import check_cluster

        check_cluster(args.cluster)
    closed_loop = _closed_loop_section(args.closed_loop, args.out) if args.closed_loop else ""
    grbal_path, mb_path = args.models / "grbal.onnx", args.models / "mb.onnx"
    if not args.sweep_only:  # a missing model fails before any collection
        grbal, mb = read_onnx(grbal_path), read_onnx(mb_path)
    args.work.mkdir(parents=True, exist_ok=True)
    sets = collect_eval_sets(
        args.work, args.eval_episodes, args.seed, args.workers, progress, args.cluster
    )
    sweep_path = args.work / "sweep.json"
    sweep = None
    if args.sweep_only:
        sweep = run_sweep(
            args.data, args.work, args.sweep_minutes, args.seed, sets, progress,
            cluster=args.cluster,
        )  # fmt: skip
        sweep_path.write_text(json.dumps([asdict(r) for r in sweep], indent=1))
        print(f"wrote {sweep_path}")
        return 0
    if args.reuse_sweep:
        if not sweep_path.is_file():
            raise ConfigError(f"--reuse-sweep: {sweep_path} does not exist; run without it once")
        sweep = [
            SweepRow(**{**r, "hidden": tuple(r["hidden"])})
            for r in json.loads(sweep_path.read_text())
        ]
    elif args.sweep_minutes > 0:
        sweep = run_sweep(
            args.data, args.work, args.sweep_minutes, args.seed, sets, progress,
            cluster=args.cluster,
        )  # fmt: skip
        sweep_path.write_text(json.dumps([asdict(r) for r in sweep], indent=1))
    M, K, lr = grbal.M, grbal.K, grbal.inner_lr
    table = {
        label: {
            "grbal": evaluate_model(grbal, eps, M, K, lr),
            "mb": evaluate_model(mb, eps, M, K, lr),
        }
        for label, eps in sets.items()
    }
    groups = {label: window_episodes(eps, M, K) for label, eps in sets.items()}
    command = (
        f"roach results --out {args.out} --models {args.models} --data {args.data} "
        f"--eval-episodes {args.eval_episodes} --sweep-minutes {args.sweep_minutes:g} "
        f"--seed {args.seed}"
        + (f" --closed-loop {args.closed_loop}" if args.closed_loop else "")
        + (" --reuse-sweep" if args.reuse_sweep else "")
    )
    text = results_markdown(
        command,
        grbal_path,
        mb_path,
        grbal,
        mb,
        table,
        groups,
        sweep,
        args.sweep_minutes,
        args.eval_episodes,
        closed_loop,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    (args.work / "table.json").write_text(
        json.dumps({k: {a: e.to_json() for a, e in v.items()} for k, v in table.items()}, indent=1)
    )
    print(text)
    return 0


def _closed_loop_section(path: Path, out: Path) -> str:
    import json as _json

    from offboard_training.closed_loop import SUITES
    from offboard_training.suite_report import (
        header_lines,
        load_scores,
        plain_label,
        suite_markdown,
    )

    scores = load_scores(path)
    doc = _json.loads(path.read_text())
    pairs = (
        SUITES[doc["suite"]][1]
        if doc.get("suite") in SUITES
        else [
            (c or "nominal", c)
            for c in doc.get("conditions", sorted({s.case.condition for s in scores}))
        ]
    )
    header = header_lines(
        doc.get("command", "roach eval"),
        scores,
        doc.get("code_version", "?"),
        planner=doc.get("planner"),
        command_timing=doc.get("command_timing"),
    )
    return suite_markdown(scores, pairs, header, plain_label(scores), out.parent / "img", "img")
