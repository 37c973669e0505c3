"""The offboard commands' units of work on a Ray cluster (``--cluster ADDRESS``).

A unit of work is one episode (``roach collect``, ``roach eval``) or one training run
(``roach sweep``, ``roach results``), carrying its own seed, so where and in which order
it runs changes nothing in its result. Without ``--cluster`` the commands keep their local
process pool and never import Ray (the ``cluster`` extra).

Addresses:

- ``local``: start a Ray instance inside this command (all of this machine's CPUs, on
  the loopback address only; gone when the command ends);
- ``auto``: join the cluster that ``ray start --head`` started on this machine (or the
  one ``RAY_ADDRESS`` names);
- ``HOST:PORT``: join the cluster whose head listens there (``ray start --head --port``);
- ``ray://HOST:PORT``: the head's Ray Client server (a driver outside the cluster).

What moves: task arguments and results go through Ray's object store (a model file's
checked contents, episode arrays, scores); run folders and MCAP logs are written where the
task runs, so on a cluster of several machines the folder must be a path every machine
shares. The robot still gets only the exported ONNX file.

A task whose worker process dies (killed, out of memory, its node lost) is run again by
Ray up to ``TASK_RETRIES`` times; the driver takes exactly one result per unit, so nothing
is lost or counted twice. An error the unit raises itself (a ``RoachError``: a bad model
file, a condition the simulator refuses) is not retried: it ends the command as one line.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from robot_contract.errors import ConfigError, RoachError

TASK_RETRIES = 3
"""Reruns of a task whose worker died before it finished (Ray's ``max_retries``)."""

ADDRESS_FORMS = "local, auto, HOST:PORT or ray://HOST:PORT"
_HOST_PORT = re.compile(r"^(ray://)?[A-Za-z0-9_.\-]+:\d{1,5}$")


class ClusterError(RoachError):
    """A cluster that cannot be reached, or a task that failed for good on it."""


def check_address(address: str) -> str:
    """``address`` if it is one of ``ADDRESS_FORMS``, else a one-line ``ConfigError``."""
    if address in ("local", "auto") or _HOST_PORT.match(address):
        port = address.rsplit(":", 1)[-1]
        if address in ("local", "auto") or 0 < int(port) < 65536:
            return address
    raise ConfigError(f"--cluster {address!r}: not an address; valid: {ADDRESS_FORMS}")


def check_cluster(address: str) -> str:
    """``check_address``, and for ``HOST:PORT`` / ``ray://HOST:PORT`` that something answers
    there: the commands call this before any work, so a mistake is one line up front."""
    check_address(address)
    if address not in ("local", "auto"):
        _check_reachable(address)
    return address


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError(
            "--cluster needs Ray, which is not installed: pip install -e '.[cluster]'"
        ) from None
    return ray


@contextmanager
def connected(address: str) -> Iterator[dict[str, float]]:
    """Joins (or, for ``local``, starts) the cluster at ``address`` for the block; yields
    its resources (e.g. ``{"CPU": 2.0, ...}``). Leaves a connection it did not make open."""
    check_address(address)
    if address == "local":
        # One machine: listen on the loopback address only (Ray's single-node mode; read
        # when Ray is imported), and run the workers at this command's priority, as the
        # local pool does (Ray's default nice 15 starves them on a busy machine).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_worker_niceness", "0")
    ray = _ray()
    made_here = not ray.is_initialized()
    if made_here and address not in ("local", "auto"):
        _check_reachable(address)
    if made_here:
        options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if address == "local":
            options["include_dashboard"] = False
        try:
            ray.init(address=address, **options)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError, grpc errors
            raise ClusterError(
                f"--cluster {address}: cannot join the cluster ({_one_line(exc)}); start one "
                "with `ray start --head` (docs/cluster.md)"
            ) from None
    try:
        yield {k: float(v) for k, v in ray.cluster_resources().items()}
    finally:
        if made_here:
            ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """A one-line ``ClusterError`` now if nothing listens at ``address`` (Ray itself would
    keep retrying for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(
            f"--cluster {address}: no cluster answers there ({_one_line(exc)}); start one "
            "with `ray start --head` (docs/cluster.md)"
        ) from None


def run_tasks(
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    *,
    what: str,
    shared: dict[str, Any] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Runs ``fn(*call, **shared)`` for every call as one Ray task each (one CPU); yields
    ``(index of the call, result)`` as tasks finish, each index exactly once.

    ``shared``: keyword arguments every task takes, put into the object store once (a
    model, a dataset) instead of once per task. Must be called inside ``connected``.
    A worker that dies is replaced and its task rerun (``TASK_RETRIES``); a ``RoachError``
    raised by ``fn`` comes out here unchanged, anything else as a one-line ``ClusterError``
    naming ``what``. Leaving early cancels the tasks still pending.
    """
    ray = _ray()
    from ray.exceptions import RayError, RayTaskError

    remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(fn)
    refs = {k: ray.put(v) for k, v in (shared or {}).items()}
    index = {remote.remote(*call, **refs): i for i, call in enumerate(calls)}
    pending = list(index)
    seen: set[int] = set()
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    value = ray.get(ref)
                except RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, RoachError):
                        raise cause from None
                    why = _one_line(cause or exc)
                    raise ClusterError(f"{what}: a task failed: {why}") from None
                except RayError as exc:  # worker died more often than TASK_RETRIES, node lost
                    raise ClusterError(
                        f"{what}: a task was lost after {TASK_RETRIES} retries: {_one_line(exc)}"
                    ) from None
                i = index[ref]
                if i in seen:  # cannot happen with one ObjectRef per call; guards the count
                    raise ClusterError(f"{what}: unit {i} returned twice")
                seen.add(i)
                yield i, value
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
