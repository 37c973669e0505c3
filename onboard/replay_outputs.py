"""What ``roach replay`` writes besides text: the run as training data, and a plot.

``write_dataset`` turns a log into the training dataset format of docs/training.md (a
folder with ``manifest.json`` and one ``ep_NNNNN.npz`` per episode), so a run on the
robot becomes data for ``roach train``. Transition k is ``(s_k, a_k, s_{k+1})`` with
``a_k`` the command sent at tick k, as in the loop; a tick without a state or with a
stop command ends an unbroken chain of transitions, and each chain is one episode.

``plot_log`` draws the path against the target, the commands, the adaptation loss
before and after the step, and the step times, with the logged events marked on the
time axis (matplotlib, imported only here).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onboard.config import ControllerConfig
from onboard.logging_mcap import RunLog
from onboard.replay import ReplayRow, _command, _state
from onboard.tasks import make_task
from robot_contract.errors import ConfigError
from robot_contract.state import ACTION_NAMES, CONTROL_PERIOD_S, STATE_NAMES

DATASET_FORMAT_VERSION = 1


def chains(ticks: Sequence[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The log's unbroken chains of transitions: (states [T+1, 24], actions [T, 2])."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    states: list[np.ndarray] = []
    actions: list[np.ndarray] = []

    def flush() -> None:
        if actions and len(actions) == len(states):  # the last command has no next state
            actions.pop()
        if actions:
            out.append((np.array(states), np.array(actions)))
        states.clear()
        actions.clear()

    prev_tick: int | None = None
    for t in ticks:
        s, cmd = _state(t), _command(t)
        if prev_tick is not None and int(t["tick"]) != prev_tick + 1:
            flush()
        prev_tick = int(t["tick"])
        if s is None:
            flush()
            continue
        if states:
            states.append(s)
        if cmd is None:
            flush()
            continue
        if not states:
            states.append(s)
        actions.append(cmd)
    flush()
    return out


def write_dataset(log: RunLog, source: Path, out: Path) -> tuple[int, int]:
    """Writes ``out`` as a dataset folder; returns (episodes, transitions)."""
    eps = chains(log.ticks)
    if not eps:
        raise ConfigError(f"log {source}: no transition to write (no two planned ticks in a row)")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (states, actions) in enumerate(eps):
        name = f"ep_{i:05d}.npz"
        tmp = out / f"ep_{i:05d}.tmp.npz"
        np.savez(
            tmp,
            states=states.astype(np.float64),
            actions=actions.astype(np.float64),
            condition=np.array(""),  # what the robot ran on is not in the log
            seed=np.array(-1, np.int64),
            policy=np.array("mpc"),
        )
        os.replace(tmp, out / name)
        entries.append({"file": name, "condition": "", "seed": -1, "steps": len(actions),
                        "policy": "mpc"})  # fmt: skip
    run = log.run or {}
    transitions = int(sum(len(a) for _, a in eps))
    manifest = {
        "format_version": DATASET_FORMAT_VERSION,
        "state_names": list(STATE_NAMES),
        "action_names": list(ACTION_NAMES),
        "control_period_s": CONTROL_PERIOD_S,
        "episodes": entries,
        "info": {
            "source": "roach replay --to-dataset",
            "log": str(source),
            "model": run.get("model", {}).get("path"),
            "hello": run.get("hello"),
            "transitions": transitions,
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return len(eps), transitions


def plot_log(
    log: RunLog, cfg: ControllerConfig, rows: list[ReplayRow], out: Path, title: str
) -> None:
    """Path vs target, commands, adaptation loss before/after, step times; events marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install -e '.[sim]'") from None
    ticks = log.ticks
    t = np.array([int(k["tick"]) for k in ticks]) * CONTROL_PERIOD_S
    states = [_state(k) for k in ticks]
    xy = np.array([s[:2] for s in states if s is not None])
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    a = ax[0, 0]
    if xy.size:
        first = next(s for s in states if s is not None)
        path = make_task(cfg.task, first).points
        a.plot(path[:, 0], path[:, 1], "k--", lw=1, label=f"target ({cfg.task.name})")
        a.plot(xy[:, 0], xy[:, 1], "C0", lw=1.5, label="robot")
        a.plot(xy[0, 0], xy[0, 1], "C0o", ms=4)
    a.set(xlabel="x (m)", ylabel="y (m)", title="path")
    a.set_aspect("equal", adjustable="datalim")
    a.legend(fontsize=8)
    cmds = np.array([[np.nan, np.nan] if (c := _command(k)) is None else c for k in ticks])
    a = ax[0, 1]
    a.plot(t, cmds[:, 0], label="left")
    a.plot(t, cmds[:, 1], label="right")
    a.set(xlabel="time (s)", ylabel="command (rev/s)", title="commands")
    a.legend(fontsize=8)
    a = ax[1, 0]
    rt = np.array([r.tick for r in rows]) * CONTROL_PERIOD_S
    a.semilogy(rt, [r.window_before for r in rows], label="window loss before the step")
    a.semilogy(rt, [r.window_after for r in rows], label="after")
    a.set(xlabel="time (s)", ylabel="loss (MSE, normalised)", title="adaptation")
    a.legend(fontsize=8)
    a = ax[1, 1]
    step = [k["timing"]["adapt_ms"] + k["timing"]["plan_ms"] for k in ticks]
    a.plot(t, step, "C2", lw=1)
    a.set(xlabel="time (s)", ylabel="adapt + plan (ms)", title="step time")
    for e in log.events:
        for a in (ax[0, 1], ax[1, 0], ax[1, 1]):
            a.axvline(int(e["tick"]) * CONTROL_PERIOD_S, color="r", lw=0.6, alpha=0.5)
    if log.events:
        ax[0, 1].plot([], [], "r", lw=0.6, label="events")
        ax[0, 1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    except OSError as exc:
        raise ConfigError(f"--plot {out}: cannot write ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
