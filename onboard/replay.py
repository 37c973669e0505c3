"""What a logged run did, and how adaptation predicted, offline (``roach replay``).

``summary_text`` gives a log's ticks, events, timings and tracking. ``replay_adaptation``
re-runs adaptation on the logged transitions exactly as the loop did and, for each
tick, reports the window loss before and after the adaptation step and the prediction
error of the *next* transition, which the window did not contain, with the meta-learned
and with the adapted parameters: the number that says whether adaptation helped.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onboard.adaptation import Adapter
from onboard.history import TransitionHistory
from onboard.logging_mcap import RunLog


@dataclass
class ReplayRow:
    """One tick of the adaptation replay (losses are MSE in normalised delta units)."""

    tick: int
    n: int
    """Transitions in the window."""
    window_before: float
    window_after: float
    next_meta: float
    """Error on the next transition with the meta-learned parameters (nan if none)."""
    next_adapted: float
    """Error on the next transition with the parameters the tick planned with."""


def replay_adaptation(ticks: list[dict[str, Any]], adapter: Adapter) -> list[ReplayRow]:
    """Re-runs the loop's history and adaptation over logged ticks (tick order).

    Mirrors onboard/loop.py: a tick with a finite state appends it; a tick that
    commanded a plan appends its command; any other tick breaks the chain.
    """
    history = TransitionHistory(adapter.M)
    rows: list[ReplayRow] = []
    by_tick = {int(t["tick"]): t for t in ticks}
    for t in ticks:
        state = _state(t)
        if state is None:
            history.break_chain()
            continue
        history.push_state(state)
        res = adapter.adapt(*history.window(adapter.M))
        next_meta = next_adapted = math.nan
        cmd = _command(t)
        nxt = by_tick.get(int(t["tick"]) + 1)
        s_next = None if nxt is None else _state(nxt)
        if cmd is not None and s_next is not None:
            pair_s = np.stack([state, s_next])
            pair_a = cmd[None, :]
            next_meta = adapter.window_loss(pair_s, pair_a, adapter.meta_params)
            next_adapted = adapter.window_loss(pair_s, pair_a, adapter.params)
        rows.append(
            ReplayRow(
                int(t["tick"]),
                len(history),
                res.loss_before,
                res.loss_after,
                next_meta,
                next_adapted,
            )
        )
        if cmd is not None:
            history.push_action(cmd)
        else:
            history.break_chain()
    return rows


def _state(t: dict[str, Any]) -> np.ndarray | None:
    s = t.get("state")
    if s is None or any(v is None for v in s):
        return None
    a = np.asarray(s, np.float64)
    return a if a.shape == (24,) and np.isfinite(a).all() else None


def _command(t: dict[str, Any]) -> np.ndarray | None:
    c = t.get("command") or {}
    if c.get("kind") != "plan" or c.get("left_rev_s") is None or c.get("right_rev_s") is None:
        return None
    return np.array([c["left_rev_s"], c["right_rev_s"]], np.float64)


def summary_text(path: Path, log: RunLog) -> str:
    """Ticks, events, timings and tracking of a logged run."""
    ticks = log.ticks
    state = "finished" if log.finished else "unfinished (cut short)"
    lines = [f"log {path}: {len(ticks)} ticks, {state}"]
    if log.run:
        cfg = log.run.get("config", {})
        lines.append(
            f"run: task {cfg.get('task', {}).get('name')}, "
            f"mode {log.run.get('adaptation', {}).get('mode')}, "
            f"model {log.run.get('model', {}).get('path')}, "
            f"{'lockstep' if log.run.get('lockstep') else 'realtime'} clock"
        )
    events: Counter[str] = Counter()
    for t in ticks:
        events.update(t.get("events", []))
    kinds = Counter((t.get("command") or {}).get("kind") for t in ticks)
    lines.append(
        f"commands: {kinds.get('plan', 0)} planned, {kinds.get('stop', 0)} stops; events: "
        + (", ".join(f"{k} {v}" for k, v in sorted(events.items())) or "none")
    )
    step = np.array(
        [
            t["timing"]["adapt_ms"] + t["timing"]["plan_ms"]
            for t in ticks
            if (t.get("command") or {}).get("kind") == "plan"
        ]
    )
    if step.size:
        lines.append(
            f"step time (adapt + plan): p50 {np.percentile(step, 50):.2f} ms  "
            f"p99 {np.percentile(step, 99):.2f} ms  max {step.max():.2f} ms"
        )
    tracked = [t["tracking"] for t in ticks if t.get("tracking")]
    if tracked:
        d = np.array([x["distance_m"] for x in tracked], np.float64)
        lines.append(
            f"tracking ({len(tracked)} states): mean distance {np.nanmean(d):.3f} m, "
            f"max {np.nanmax(d):.3f} m, progress {tracked[-1]['progress_m']:.2f} m"
        )
    return "\n".join(lines)


def replay_totals(rows: list[ReplayRow]) -> dict[str, float | int]:
    """Means over the replay: window losses, and next-step errors (ticks that have one)."""

    def mean(xs: list[float]) -> float:
        a = np.array([x for x in xs if math.isfinite(x)])
        return float(a.mean()) if a.size else math.nan

    scored = [r for r in rows if math.isfinite(r.next_meta)]
    return {
        "ticks": len(rows),
        "scored_ticks": len(scored),
        "window_before": mean([r.window_before for r in rows]),
        "window_after": mean([r.window_after for r in rows]),
        "next_meta": mean([r.next_meta for r in scored]),
        "next_adapted": mean([r.next_adapted for r in scored]),
    }


def replay_summary(rows: list[ReplayRow], model_path: str, mode: str, m: int) -> str:
    """One line: mean window losses before and after adaptation, and mean next-step errors
    with the meta-learned and the adapted parameters (ticks that have a next step)."""

    def mean(xs: list[float]) -> float:
        a = np.array([x for x in xs if math.isfinite(x)])
        return float(a.mean()) if a.size else math.nan

    scored = [r for r in rows if math.isfinite(r.next_meta)]
    return (
        f"adaptation replay ({model_path}, mode {mode}, M {m}): {len(rows)} ticks, "
        f"mean window loss {mean([r.window_before for r in rows]):.4g} -> "
        f"{mean([r.window_after for r in rows]):.4g}; next-step error over {len(scored)} ticks: "
        f"meta {mean([r.next_meta for r in scored]):.4g}, "
        f"adapted {mean([r.next_adapted for r in scored]):.4g}"
    )
