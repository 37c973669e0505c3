"""The closed-loop suite as a Markdown section: costs with 95 % intervals, win counts,
the gap to the oracle, recovery times, and plots of representative trajectories.

Input is what ``roach eval --json`` writes. The first controller of the run is the one
under test; every other is compared with it, paired by seed per (task, condition). The
oracle (label ``oracle``, offboard_training/oracle.py) is the normaliser: a
controller's *gap to the oracle* on a condition is its mean cost minus the oracle's, and
the share of MB's gap that a controller closes is ``(MB - it) / (MB - oracle)``. Costs
can be negative (forward progress), so this difference, not a ratio, is the normalised
figure.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from offboard_training.closed_loop import (
    ORACLE,
    Comparison,
    EpisodeScore,
    EvalCase,
    _label,
    ci95,
    compare,
    is_unperturbed,
    labels,
    summarise,
)
from robot_contract.errors import ConfigError

PLOTTED_CONDITIONS = ("missing_leg=RF@3", "gain_right=0.5@3", "slope_deg=10", "terrain=ice")
"""Conditions drawn as trajectories (those of them the run has; a run with none of them
draws its mid-run changes, else its first perturbed conditions)."""


def load_scores(path: str | Path) -> list[EpisodeScore]:
    """The episodes of a ``roach eval --json`` file."""
    try:
        doc = json.loads(Path(path).read_text())
        episodes = doc["episodes"]
    except FileNotFoundError:
        raise ConfigError(f"--closed-loop {str(path)!r}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"--closed-loop {str(path)!r}: not a roach eval --json file ({exc})"
        ) from None
    known = {f.name for f in fields(EpisodeScore)}
    out = []
    try:
        for e in episodes:
            row = {k: v for k, v in e.items() if k in known}
            row["case"] = EvalCase(**e["case"])
            row["xy"] = [tuple(p) for p in row.get("xy", [])]
            row["path_xy"] = [tuple(p) for p in row.get("path_xy", [])]
            out.append(EpisodeScore(**row))
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"--closed-loop {str(path)!r}: malformed episode ({exc})") from None
    if not out:
        raise ConfigError(f"--closed-loop {str(path)!r}: holds no episodes")
    return out


@dataclass(frozen=True)
class ConditionRow:
    """One controller on one condition: mean over tasks and seeds."""

    label: str
    condition: str
    cost: float
    ci95: float
    """Over seeds, of the task-averaged cost."""
    seeds: int


def condition_rows(scores: Iterable[EpisodeScore]) -> dict[tuple[str, str], ConditionRow]:
    """(label, condition) -> the cost averaged over tasks per (replica, seed), then over
    those."""
    by: dict[tuple[str, str], dict[tuple[int, int], list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for s in scores:
        by[(_label(s.case), s.case.condition)][s.case.unit].append(s.cost)
    out = {}
    for (label, condition), per_seed in by.items():
        values = [float(np.mean(v)) for v in per_seed.values()]
        out[(label, condition)] = ConditionRow(
            label, condition, float(np.mean(values)), ci95(values), len(values)
        )
    return out


def _fmt(value: float, half: float | None = None) -> str:
    if not math.isfinite(value):
        return "-"
    return (
        f"{value:.2f}" if half is None or not math.isfinite(half) else f"{value:.2f} ± {half:.2f}"
    )


def _counts(comparisons: Sequence[Comparison]) -> tuple[int, int, int, int]:
    v = [c.verdict for c in comparisons]
    return (
        v.count("win") + v.count("better"),
        v.count("win"),
        v.count("loss") + v.count("worse"),
        v.count("loss"),
    )


def gap_closed(mb: float, it: float, oracle: float, margin: float = 0.0) -> float:
    """The share of MB's gap to the oracle that a controller closes; nan where there is no
    gap to close: MB not worse than the oracle by more than ``margin`` (the report passes
    the two means' 95 % half-widths combined, so a gap within the noise shows as ``-``
    rather than as a ratio of noise; a margin that is not finite, as from one seed,
    counts as 0)."""
    gap = mb - oracle
    floor = margin if math.isfinite(margin) and margin > 0 else 0.0
    return (mb - it) / gap if gap > floor else math.nan


def suite_markdown(
    scores: Sequence[EpisodeScore],
    pairs: Sequence[tuple[str, str]],
    header: Sequence[str],
    mb_label: str,
    plot_dir: Path | None = None,
    plot_link: str = "img",
) -> str:
    """The section: ``pairs`` are the suite's (name, condition) in order; the first
    controller of ``scores`` is the one under test, ``mb_label`` the plain model."""
    names = [n for n in labels(scores) if n != ORACLE]
    if not names:
        raise ConfigError("the closed-loop run holds no controller other than the oracle")
    main, others = names[0], names[1:]
    rows = condition_rows(scores)
    has_oracle = any(_label(s.case) == ORACLE for s in scores)
    seeds = sorted({s.case.seed for s in scores})
    replicas = 1 + max(s.case.replica for s in scores)
    trained = f" x {replicas} training seeds (one model file each)" if replicas > 1 else ""
    over = "seeds and training seeds" if replicas > 1 else "seeds"
    tasks = list(dict.fromkeys(s.case.task for s in scores))
    per = sum(1 for s in scores if _label(s.case) == main)
    n_oracle = sum(1 for s in scores if _label(s.case) == ORACLE)
    oracle = f"; the oracle's {n_oracle}, one file per condition" if has_oracle else ""
    lines = list(header)
    lines += [
        "",
        f"{len(scores)} episodes, {per} per controller: {len(tasks)} tasks ({', '.join(tasks)}) "
        f"x {len(pairs)} conditions x {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}){trained}"
        f"{oracle}. Cost = mean per-tick trajectory-following cost on the true pose "
        f"(docs/evaluation.md), lower is better; ± = 95 % interval over {over} of the cost "
        "averaged over the tasks.",
        "",
    ]
    columns = names + ([ORACLE] if has_oracle else [])
    head = "| condition | " + " | ".join(f"`{c}`" for c in columns)
    head += (
        (" | gap closed by " + " | gap closed by ".join(f"`{n}`" for n in names))
        if has_oracle and mb_label in names
        else ""
    )
    lines.append(head + " |")
    lines.append("|---" * (head.count("|")) + "|")
    for name, condition in pairs:
        cells = [
            _fmt(rows[(c, condition)].cost, rows[(c, condition)].ci95)
            if (c, condition) in rows
            else "-"
            for c in columns
        ]
        if has_oracle and mb_label in names:
            o = rows.get((ORACLE, condition))
            m = rows.get((mb_label, condition))
            for n in names:
                r = rows.get((n, condition))
                g = (
                    gap_closed(m.cost, r.cost, o.cost, math.hypot(m.ci95, o.ci95))
                    if o and m and r
                    else math.nan
                )
                cells.append("-" if not math.isfinite(g) else f"{100 * g:.0f} %")
        lines.append(f"| {name} (`{condition or 'nominal'}`) | " + " | ".join(cells) + " |")
    lines.append("")
    pair = "seed and training seed" if replicas > 1 else "seed"
    lines.append(
        f"Per (condition, task) case, `{main}` against each other controller, paired by {pair} "
        "(significant = the 95 % interval of the paired difference excludes 0):"
    )
    lines.append("")
    lines.append(
        "| against | cases | better (significant) | worse (significant) "
        "| better on perturbed | worse on perturbed (significant) |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|")
    perturbed = {c for n, c in pairs if not is_unperturbed(c)}
    for other in others + ([ORACLE] if has_oracle else []):
        comps = compare(scores, main, other)
        pert = [c for c in comps if c.condition in perturbed]
        b, bs, w, ws = _counts(comps)
        pb, pbs, pw, pws = _counts(pert)
        share = f"{100 * pb / len(pert):.0f} %" if pert else "-"
        lines.append(
            f"| `{other}` | {len(comps)} | {b} ({bs}) | {w} ({ws}) "
            f"| {pb} of {len(pert)} ({share}; {pbs} significant) | {pw} ({pws}) |"
        )
    lines += _recovery_lines(scores, columns)
    if plot_dir is not None:
        lines += _plots(scores, pairs, columns, plot_dir, plot_link)
    lines += ["", "Every case (mean cost ± 95 % interval over seeds):", ""]
    lines += _case_table(scores, pairs, tasks, columns)
    return "\n".join(lines) + "\n"


def _recovery_lines(scores: Sequence[EpisodeScore], columns: Sequence[str]) -> list[str]:
    onset = [s for s in scores if s.recovered is not None]
    if not onset:
        return []
    lines = [
        "",
        "Recovery after a mid-run change (time from the onset until the 1 s running mean of "
        "the cost is within 20 % of the same controller's on the intact robot):",
        "",
        "| condition | controller | recovered | median s | within 1 s |",
        "|---|---|---:|---:|---:|",
    ]
    by: dict[tuple[str, str], list[EpisodeScore]] = defaultdict(list)
    for s in onset:
        by[(s.case.condition, _label(s.case))].append(s)
    for (condition, label), eps in sorted(
        by.items(),
        key=lambda kv: (kv[0][0], columns.index(kv[0][1]) if kv[0][1] in columns else 99),
    ):
        rec = [e.recovery_s for e in eps if e.recovered and e.recovery_s is not None]
        fast = sum(1 for r in rec if r <= 1.0 + 1e-9)
        med = f"{float(np.median(rec)):.1f}" if rec else "never"
        lines.append(
            f"| `{condition}` | `{label}` | {len(rec)}/{len(eps)} | {med} | {fast}/{len(eps)} |"
        )
    return lines


def _case_table(
    scores: Sequence[EpisodeScore],
    pairs: Sequence[tuple[str, str]],
    tasks: Sequence[str],
    columns: Sequence[str],
) -> list[str]:
    by = {(m.label, m.task, m.condition): m for m in summarise(scores)}
    lines = ["| condition | task | " + " | ".join(f"`{c}`" for c in columns) + " |"]
    lines.append("|---|---|" + "---:|" * len(columns))
    for name, condition in pairs:
        for task in tasks:
            cells = []
            for c in columns:
                m = by.get((c, task, condition))
                cells.append(_fmt(m.cost_mean, m.cost_ci95) if m else "-")
            lines.append(f"| {name} | {task} | " + " | ".join(cells) + " |")
    return lines


def _plots(
    scores: Sequence[EpisodeScore],
    pairs: Sequence[tuple[str, str]],
    columns: Sequence[str],
    plot_dir: Path,
    plot_link: str,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from firmware_bridge.sim.conditions import parse_condition
    from robot_contract.state import CONTROL_PERIOD_S

    names = {c: n for n, c in pairs}
    chosen = [c for c in PLOTTED_CONDITIONS if c in names]
    if not chosen:  # another suite: its changes mid-run first, then any perturbed condition
        changing = [c for c in names if parse_condition(c).onset_s() is not None]
        chosen = (changing or [c for c in names if not is_unperturbed(c)] or list(names))[:4]
    seed = min(s.case.seed for s in scores)
    task = "figure8" if any(s.case.task == "figure8" for s in scores) else scores[0].case.task
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 4.2), squeeze=False)
    for ax, condition in zip(axes[0], chosen, strict=True):
        onset = parse_condition(condition).onset_s()
        drawn_path = False
        for label in columns:
            match = [
                s
                for s in scores
                if _label(s.case) == label
                and s.case.condition == condition
                and s.case.task == task
                and s.case.seed == seed
            ]
            if not match:
                continue
            s = match[0]
            xy = np.asarray(s.xy)
            if not drawn_path and s.path_xy:
                p = np.asarray(s.path_xy)
                ax.plot(p[:, 0], p[:, 1], "k--", lw=1, label="path")
                drawn_path = True
            (line,) = ax.plot(xy[:, 0], xy[:, 1], lw=1.2, label=f"{label} ({s.cost:.2f})")
            if onset is not None:
                k = min(len(xy) - 1, round(onset / CONTROL_PERIOD_S))
                ax.plot(xy[k, 0], xy[k, 1], "x", color=line.get_color(), ms=9, mew=2)
        ax.set_title(
            f"{names[condition]}, {task}, seed {seed}"
            + (f"\nx: onset at {onset:g} s" if onset is not None else ""),
            fontsize=9,
        )
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    plot_dir.mkdir(parents=True, exist_ok=True)
    out = plot_dir / "closed-loop-trajectories.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [
        "",
        f"Representative trajectories (true pose, seed {seed}, task {task}; legend: episode cost):",
        "",
        f"![trajectories]({plot_link}/{out.name})",
    ]


def plain_label(scores: Sequence[EpisodeScore]) -> str:
    """The plain model's controller: an MB model file run without adaptation."""
    from onboard.model import load_model

    for label in labels(scores):
        case = next(s.case for s in scores if _label(s.case) == label)
        if (
            label != ORACLE
            and case.mode == "none"
            and load_model(case.model).meta.algorithm == "mb"
        ):
            return label
    return ""


def header_lines(
    command: str,
    scores: Sequence[EpisodeScore],
    code: str,
    *,
    planner: Mapping[str, Any] | None = None,
    command_timing: str | None = None,
) -> list[str]:
    """The run's command, models (with their sha256), code version and, when the run
    recorded it, the planner every controller used (``onboard.planner.PlannerConfig``)."""
    import hashlib

    models: dict[str, str] = {}
    for s in scores:
        if _label(s.case) != ORACLE and s.case.model not in models:
            try:
                models[s.case.model] = hashlib.sha256(Path(s.case.model).read_bytes()).hexdigest()[
                    :12
                ]
            except OSError:
                models[s.case.model] = "?"
    oracles = sorted({s.case.model for s in scores if _label(s.case) == ORACLE})
    out = [f"Produced by `{command}` (code {code})."]
    out.append("")
    out.append("Models: " + ", ".join(f"`{m}` (sha256 {h})" for m, h in models.items()) + ".")
    if oracles:
        out.append(f"Oracles: {len(oracles)} files in `{Path(oracles[0]).parent}`.")
    if planner:
        kind = planner.get("kind", "?")
        detail = (
            f", {planner.get('cem_iters')} iterations, {planner.get('cem_elites')} elites"
            if kind == "cem"
            else ""
        )
        timing = f", {command_timing} command timing" if command_timing else ""
        out.append(
            f"Planner (every controller): `{kind}`, {planner.get('n_candidates')} candidates x "
            f"{planner.get('horizon')} steps{detail}{timing}, planner seed {planner.get('seed')}."
        )
    return out


def as_jsonable(rows: dict[tuple[str, str], ConditionRow]) -> list[dict[str, Any]]:
    return [r.__dict__ for r in rows.values()]
