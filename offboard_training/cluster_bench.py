"""``roach bench cluster``: episodes per second on the local pool and on Ray, 1 and 2 workers.

The same collection (random-action episodes, then MPC episodes with the shipped GrBAL
model) runs on the local process pool and on an in-process Ray instance of as many CPUs;
both start their workers inside the timed run (cold), and Ray's is run a second time on
the workers it already has (warm). The per-task overhead is Ray's cost of an empty task:
its throughput with many in flight, and the round trip of one at a time. Each Ray
collection is checked byte for byte against the pool's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from offboard_training.collect import CollectConfig, collect

MODEL = Path(__file__).resolve().parents[1] / "models" / "grbal.onnx"


def _noop() -> None:
    return None


def _timed_collect(config: CollectConfig, out: Path, cluster: str = "") -> float:
    t0 = time.perf_counter()
    collect(config, out, progress=False, cluster=cluster)
    return time.perf_counter() - t0


def _same(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.npz"))
    return names == sorted(p.name for p in b.glob("*.npz")) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def run_benchmark(args: argparse.Namespace) -> None:
    # One machine, loopback only, workers at this process's priority (as the pool's).
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")
    import logging

    import ray

    quick = bool(getattr(args, "quick", False))
    loads = [
        ("random", CollectConfig(episodes=8 if quick else 40, seed=1)),
        ("mpc", CollectConfig(episodes=4 if quick else 12, seed=1, policy="mpc",
                              model=str(MODEL), candidates=200)),
    ]  # fmt: skip
    print("cluster: episodes/s, local process pool vs Ray (in-process instance, same CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for workers in (1, 2):
            ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False)  # fmt: skip
            try:
                for name, base in loads:
                    config = CollectConfig(**{**base.__dict__, "workers": workers})
                    n = config.episodes
                    d = root / f"{name}-{workers}"
                    pool = _timed_collect(config, d / "pool")
                    cold = _timed_collect(config, d / "ray-cold", cluster="local")
                    warm = _timed_collect(config, d / "ray-warm", cluster="local")
                    same = _same(d / "pool", d / "ray-cold") and _same(d / "pool", d / "ray-warm")
                    print(
                        f"  {name:<6} {n:>3} episodes, {workers} worker(s): pool {n / pool:6.2f} "
                        f"ep/s; Ray cold {n / cold:6.2f} ep/s ({cold / pool:4.2f} x pool time), "
                        f"warm {n / warm:6.2f} ep/s ({warm / pool:4.2f} x); "
                        f"identical: {'yes' if same else 'NO'}"
                    )
                remote = ray.remote(num_cpus=1)(_noop)
                ray.get([remote.remote() for _ in range(20)])  # workers up
                many = 200 if quick else 1000
                t0 = time.perf_counter()
                ray.get([remote.remote() for _ in range(many)])
                thru = (time.perf_counter() - t0) / many
                t0 = time.perf_counter()
                for _ in range(50):
                    ray.get(remote.remote())
                trip = (time.perf_counter() - t0) / 50
                print(
                    f"  empty task, {workers} worker(s): {thru * 1e3:.2f} ms each with {many} in "
                    f"flight, {trip * 1e3:.2f} ms round trip one at a time"
                )
            finally:
                ray.shutdown()
