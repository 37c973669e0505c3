"""Crash-safe run logs in MCAP, and the reader that gets every complete tick back.

The file is unchunked: each message is one MCAP record written straight to the file and
handed to the operating system at once (``flush``), so a ``kill -9`` of the process
loses at most the message being written; a background thread runs ``os.fsync`` every
``sync_every_s`` seconds so a power cut loses at most that much. A file that was never
finished has no footer; ``read_log`` (and the mcap library's ``NonSeekingReader``) read
it up to its last complete record. Messages are JSON with a JSON Schema per channel
(Foxglove reads them as they are). The layout of every message is docs/log-format.md.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcap.exceptions import InvalidMagic, McapError
from mcap.records import Channel, Message
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, IndexType, Writer

from robot_contract.errors import RoachError

LOG_FORMAT_VERSION = 1
PROFILE = "roach"

TOPIC_RUN = "/roach/run"
TOPIC_TICK = "/roach/tick"
TOPIC_EVENT = "/roach/event"
TOPIC_SUMMARY = "/roach/summary"

_NUM = {"type": ["number", "null"]}
_OBJ_OR_NULL = {"type": ["object", "null"]}

SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    TOPIC_RUN: (
        "roach.Run",
        {
            "type": "object",
            "description": "Once at start: config, model metadata, versions.",
            "properties": {
                "log_format_version": {"type": "integer"},
                "config": {"type": "object"},
                "model": {"type": "object"},
                "hello": _OBJ_OR_NULL,
                "lockstep": {"type": "boolean"},
                "nominal_action": {"type": "array", "items": {"type": "number"}},
            },
        },
    ),
    TOPIC_TICK: (
        "roach.Tick",
        {
            "type": "object",
            "description": "One control tick; units in docs/log-format.md.",
            "properties": {
                "tick": {"type": "integer"},
                "t_monotonic_s": {"type": "number"},
                "telemetry": _OBJ_OR_NULL,
                "pose": _OBJ_OR_NULL,
                "state": {"type": ["array", "null"], "items": _NUM},
                "command": {
                    "type": "object",
                    "properties": {
                        "kind": {"enum": ["plan", "nominal", "stop"]},
                        "left_rev_s": _NUM,
                        "right_rev_s": _NUM,
                    },
                },
                "adaptation": _OBJ_OR_NULL,
                "planner": _OBJ_OR_NULL,
                "tracking": _OBJ_OR_NULL,
                "timing": {"type": "object"},
                "events": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["tick", "t_monotonic_s", "command", "timing", "events"],
        },
    ),
    TOPIC_EVENT: (
        "roach.Event",
        {
            "type": "object",
            "properties": {
                "tick": {"type": "integer"},
                "kind": {"type": "string"},
                "detail": {"type": "string"},
                "count": {"type": "integer"},
            },
            "required": ["tick", "kind", "count"],
        },
    ),
    TOPIC_SUMMARY: ("roach.Summary", {"type": "object"}),
    # Foxglove's well-known schemas (onboard/pose_log.py), so the 3D panel draws the run.
    "/roach/pose": ("foxglove.PoseInFrame", {"title": "foxglove.PoseInFrame", "type": "object"}),
    "/roach/path": ("foxglove.PosesInFrame", {"title": "foxglove.PosesInFrame", "type": "object"}),
}


RESERVE_BYTES = 64 * 1024
"""Disk space held next to the log (``<log>.reserve``) and given up when a write fails,
so the summary and the footer still fit on a full disk."""


class LogWriteError(RoachError):
    """The log could not be written (disk full, device gone): the run stops."""


class _StagedFile:
    """The log file as the MCAP writer's stream: each message is staged, then handed to
    the OS in one ``os.write``; a write that fails is cut off again (``ftruncate``), so the
    file always ends after a whole record."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.committed = 0
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        self._pending += data
        return len(data)

    def tell(self) -> int:
        return self.committed + len(self._pending)

    def flush(self) -> None:
        self.commit()

    def commit(self) -> None:
        data, n = bytes(self._pending), 0
        self._pending.clear()
        try:
            while n < len(data):
                n += os.write(self.fd, data[n:])
        except OSError:
            os.ftruncate(self.fd, self.committed)
            os.lseek(self.fd, self.committed, os.SEEK_SET)
            raise
        self.committed += n


def jsonable(value: Any) -> Any:
    """Plain JSON data: numpy arrays/scalars to lists/numbers, non-finite floats to null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array or scalar
        return jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


class TickLogWriter:
    """Writes one run's log. Use as a context manager, or call ``close()``.

    ``close()`` is idempotent and writes the summary and the MCAP footer; a process that
    dies before it leaves a file ``read_log`` still reads.
    """

    def __init__(self, path: str | Path, sync_every_s: float = 0.5) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.failed: str | None = None
        """Why a write failed (then the log ends at the last whole message), or None."""
        self._reserve = self.path.with_name(self.path.name + ".reserve")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with open(self._reserve, "wb") as r:
                r.write(bytes(RESERVE_BYTES))
                r.flush()
                os.fsync(r.fileno())
        except OSError:
            os.close(self._fd)
            self._reserve.unlink(missing_ok=True)
            raise
        self._file = _StagedFile(self._fd)
        self._writer = Writer(
            self._file,  # type: ignore[arg-type]
            use_chunking=False,
            compression=CompressionType.NONE,
            index_types=IndexType.NONE,
        )
        self._writer.start(profile=PROFILE, library=f"roach-log/{LOG_FORMAT_VERSION}")
        self._channels: dict[str, int] = {}
        for topic, (name, schema) in SCHEMAS.items():
            sid = self._writer.register_schema(
                name=name, encoding="jsonschema", data=json.dumps(schema).encode()
            )
            self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="json", schema_id=sid
            )
        self._seq = 0
        self._closed = False
        self._file.flush()
        os.fsync(self._fd)
        # fsync runs on its own thread (it releases the GIL), so a slow SD card never
        # delays a control tick; the tick only hands each message to the OS.
        self._stop_sync = threading.Event()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, args=(max(sync_every_s, 0.01),), name="log-fsync", daemon=True
        )
        self._sync_thread.start()

    def write(self, topic: str, payload: dict[str, Any]) -> None:
        """Appends one message and hands it to the OS (a ``kill -9`` cannot lose it).

        LogWriteError (one line) if the OS refuses it (a full disk, a device gone): the
        file is cut back to the last whole message and the reserve is given up, so
        ``close`` can still write the summary and the footer."""
        if self.failed is not None:
            raise LogWriteError(self.failed)
        try:
            self._write(topic, payload)
        except OSError as exc:
            self.failed = (
                f"cannot write the log {self.path}: {exc.strerror or exc}; the log ends at "
                f"the last whole message ({self._file.committed} bytes)"
            )
            self._reserve.unlink(missing_ok=True)
            raise LogWriteError(self.failed) from None

    def _write(self, topic: str, payload: dict[str, Any]) -> None:
        now_ns = time.time_ns()
        data = json.dumps(jsonable(payload), separators=(",", ":"), allow_nan=False)
        self._seq += 1
        self._writer.add_message(
            channel_id=self._channels[topic],
            log_time=now_ns,
            publish_time=now_ns,
            data=data.encode(),
            sequence=self._seq,
        )
        self._file.commit()

    def _sync_loop(self, every_s: float) -> None:
        fd = self._fd
        while not self._stop_sync.wait(every_s):
            try:
                os.fsync(fd)
            except OSError:  # closed meanwhile, or a disk error: the next write will say
                return

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Writes the summary (if given) and the footer, syncs and closes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop_sync.set()
        self._sync_thread.join()
        self._reserve.unlink(missing_ok=True)  # its room is the summary's and the footer's
        try:
            if summary is not None:
                self._write(
                    TOPIC_SUMMARY, summary | ({"log_error": self.failed} if self.failed else {})
                )
            self._writer.finish()
            self._file.commit()
            os.fsync(self._fd)
        except OSError as exc:
            # Not even the reserve was enough: the log still ends at a whole message.
            raise LogWriteError(
                f"cannot finish the log {self.path}: {exc.strerror or exc}"
            ) from None
        finally:
            os.close(self._fd)

    def __enter__(self) -> TickLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RunLog:
    """Everything read back from a log. ``finished`` is False for a file cut short."""

    run: dict[str, Any] | None = None
    ticks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    finished: bool = False
    log_times_ns: list[int] = field(default_factory=list)
    """Wall-clock write time of each tick (ns since the Unix epoch)."""


def read_log(path: str | Path) -> RunLog:
    """Reads every complete message of a log, finished or cut short at any byte.

    Raises ``McapError`` only if the file is not MCAP at all (bad magic).
    """
    out = RunLog()
    channels: dict[int, str] = {}
    with open(path, "rb") as f:
        reader = StreamReader(f, record_size_limit=64 << 20)
        records = reader.records
        while True:
            try:
                record = next(records)
            except StopIteration:
                out.finished = True
                break
            except InvalidMagic:
                raise
            except (McapError, struct.error, EOFError, UnicodeDecodeError):
                break  # an unfinished file: the last record is incomplete or absent
            if isinstance(record, Channel):
                channels[record.id] = record.topic
            elif isinstance(record, Message):
                topic = channels.get(record.channel_id)
                try:
                    payload = json.loads(record.data)
                except ValueError:
                    break
                if topic == TOPIC_TICK:
                    out.ticks.append(payload)
                    out.log_times_ns.append(record.log_time)
                elif topic == TOPIC_EVENT:
                    out.events.append(payload)
                elif topic == TOPIC_RUN:
                    out.run = payload
                elif topic == TOPIC_SUMMARY:
                    out.summary = payload
    return out
