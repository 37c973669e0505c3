"""The firmware built for the host: compiling it, and calling it through ctypes.

``build_library`` compiles ``proto.c``, ``board.c`` and ``sim_hal.c`` with the system's C
compiler into a shared library under ``build/host/`` next to the sources (or a per-user
temporary folder when that is not writable), named by a hash of the sources and flags, so
it is rebuilt only when they change and concurrent builds never see a half-written file.
``HostBoard`` wraps one loaded library: the simulated board's clock and encoders in, its
duty and its UART bytes out (sim_hal.c says how).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from robot_contract.errors import ConfigError

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = ("proto.c", "board.c", "sim_hal.c")
HEADERS = ("hal.h", "proto.h", "board.h", "sim_hal.h")
WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")
STATS_NAMES = (
    "bytes_in",
    "frames_ok",
    "bad_crc",
    "cobs_errors",
    "runts",
    "oversize",
    "bad_version",
    "unknown_type",
    "seq_gaps",
    "frames_missed",
    "seq_backwards",
    "tx_frames",
    "nacks_sent",
    "watchdog_trips",
    "last_command_us",
    "watchdog_trip_us",
    "now_us",
    "flags",
    "leg_velocity_frames",
    "sample_index",
    "tx_dropped",
)
DECODER_COUNTER_NAMES = STATS_NAMES[:11]
"""The frame decoder's counters, in firmware_bridge.frame.COUNTER_NAMES order."""


def compiler() -> str:
    """The C compiler: $CC, else gcc, else cc. ConfigError (one line) if there is none."""
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return name
    raise ConfigError(
        "the C board needs a C compiler (gcc or cc, or set CC) to build firmware_bridge/board; "
        "install gcc"
    )


def build_dir() -> Path:
    """``build/host`` beside the sources, or a per-user temporary folder."""
    here = SOURCE_DIR / "build" / "host"
    try:
        here.mkdir(parents=True, exist_ok=True)
        if os.access(here, os.W_OK):
            return here
    except OSError:
        pass
    there = Path(tempfile.gettempdir()) / f"roach-board-{os.getuid()}"
    there.mkdir(parents=True, exist_ok=True)
    return there


def build(*, shared: bool = True, sanitize: bool = False, extra: tuple[str, ...] = ()) -> Path:
    """Compiles the host build (a shared library, or with ``shared=False`` the fuzz program
    ``fuzz.c``); returns its path. Cached by content; ConfigError if compilation fails."""
    cc = compiler()
    sources = (*SOURCES, "fuzz.c") if not shared else SOURCES
    flags = (*WARNINGS, "-O2", *(SANITIZE if sanitize else ()), *extra)
    flags += ("-fPIC", "-shared") if shared else ()
    h = hashlib.sha256(" ".join((cc, *flags)).encode())
    for name in (*sources, *HEADERS):
        h.update((SOURCE_DIR / name).read_bytes())
    stem = "libroachboard" if shared else "fuzz"
    out = build_dir() / f"{stem}{'-asan' if sanitize else ''}-{h.hexdigest()[:16]}"
    out = out.with_suffix(".so") if shared else out
    if out.exists():
        return out
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    cmd = [cc, *flags, "-o", str(tmp), *(str(SOURCE_DIR / s) for s in sources)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        raise ConfigError(f"building the C board with {cc} failed: {first}")
    os.replace(tmp, out)
    return out


class SimIo(ctypes.Structure):
    """Mirror of ``sim_io_t`` in sim_hal.c (checked against its size at load)."""

    _fields_ = [
        ("micros", ctypes.c_uint32),
        ("encoder", ctypes.c_int32 * 2),
        ("duty", ctypes.c_int16 * 2),
        ("gyro", ctypes.c_int16 * 3),
        ("accel", ctypes.c_int16 * 3),
        ("bemf_mv", ctypes.c_int16 * 2),
        ("battery_mv", ctypes.c_int16),
        ("pose", ctypes.c_uint8 * 24),
        ("has_pose", ctypes.c_int32),
        ("sample", ctypes.c_void_p),
        ("sampled_at", ctypes.c_uint32),
        ("tx_len", ctypes.c_uint32),
        ("tx_dropped", ctypes.c_uint32),
        ("tx", ctypes.c_uint8 * 8192),
    ]


SAMPLE_FN = ctypes.CFUNCTYPE(None)
POSE_STRUCT = struct.Struct("<6f")


def _wrap32(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


_LIBS: dict[Path, ctypes.CDLL] = {}


def load_library(path: Path | None = None) -> ctypes.CDLL:
    """The host build, compiled if needed, loaded once per process and path."""
    path = path or build()
    lib = _LIBS.get(path)
    if lib is not None:
        return lib
    lib = ctypes.CDLL(str(path))
    u32, i32, p = ctypes.c_uint32, ctypes.c_int32, ctypes.c_char_p
    lib.sim_init.argtypes = [u32, i32, i32, p, u32]
    lib.sim_init.restype = None
    lib.sim_tick.argtypes = [u32, i32, i32]
    lib.sim_tick.restype = u32
    lib.sim_rx.argtypes = [p, u32]
    lib.sim_rx.restype = None
    lib.sim_set_paused.argtypes = [ctypes.c_int]
    lib.sim_stats.argtypes = [ctypes.POINTER(u32)]
    lib.sim_decoder_reset.argtypes = [ctypes.c_int]
    lib.sim_decoder_feed.argtypes = [p, u32, ctypes.c_void_p, u32]
    lib.sim_decoder_feed.restype = u32
    lib.sim_decoder_counters.argtypes = [ctypes.POINTER(u32)]
    lib.frame_encode.argtypes = [ctypes.c_uint8, ctypes.c_uint16, p, ctypes.c_size_t, p]
    lib.frame_encode.restype = ctypes.c_size_t
    lib.cobs_encode.argtypes = [p, ctypes.c_size_t, p]
    lib.cobs_encode.restype = ctypes.c_size_t
    lib.cobs_decode.argtypes = [p, ctypes.c_size_t, p]
    lib.cobs_decode.restype = ctypes.c_int
    lib.crc16_ccitt_false.argtypes = [p, ctypes.c_size_t]
    lib.crc16_ccitt_false.restype = ctypes.c_uint16
    lib.sim_io_size.restype = u32
    if lib.sim_io_size() != ctypes.sizeof(SimIo):
        raise ConfigError(f"{path}: sim_io_t does not match host.SimIo; rebuild")
    _LIBS[path] = lib
    return lib


class HostBoard:
    """The C board of one process (the library holds one board): ticks, bytes, counters.

    ``sample`` is called when the board takes an IMU/ADC/tracker sample (at most once per
    tick) and returns (gyro (3), accel (3), bemf_mv (2), battery_mv, pose (6 floats) or
    None), in the wire's units.
    """

    def __init__(
        self,
        *,
        name: str,
        device_id: int,
        encoders: tuple[int, int] = (0, 0),
        micros: int = 0,
        sample: Callable[[], tuple] | None = None,
        library: Path | None = None,
    ) -> None:
        self.lib = load_library(library)
        self.io = SimIo.in_dll(self.lib, "sim_io")
        self._sample = sample
        self._sample_fn = SAMPLE_FN(self._on_sample)  # kept alive as long as the board
        self.io.sample = ctypes.cast(self._sample_fn, ctypes.c_void_p).value
        if len(name.encode("ascii")) > 16:
            raise ValueError(f"board name {name!r} is longer than 16 bytes")
        self.lib.sim_init(
            micros & 0xFFFFFFFF,
            _wrap32(encoders[0]),
            _wrap32(encoders[1]),
            name.encode("ascii"),
            device_id,
        )
        self._stats = (ctypes.c_uint32 * len(STATS_NAMES))()

    def _on_sample(self) -> None:
        io = self.io
        if self._sample is None:
            return
        gyro, accel, bemf, battery, pose = self._sample()
        io.gyro[:] = gyro
        io.accel[:] = accel
        io.bemf_mv[:] = bemf
        io.battery_mv = battery
        io.has_pose = pose is not None
        if pose is not None:
            ctypes.memmove(io.pose, POSE_STRUCT.pack(*pose), POSE_STRUCT.size)

    def tick(self, micros: int, encoders: tuple[int, int]) -> int:
        """One board tick at ``micros`` with these raw encoder counts; returns the watchdog
        trips since reset."""
        return int(
            self.lib.sim_tick(micros & 0xFFFFFFFF, _wrap32(encoders[0]), _wrap32(encoders[1]))
        )

    @property
    def duty(self) -> tuple[int, int]:
        d = self.io.duty
        return d[0], d[1]

    def receive(self, data: bytes) -> None:
        self.lib.sim_rx(data, len(data))

    def take_output(self) -> bytes:
        """The UART bytes the board has written since the last call."""
        io = self.io
        n = io.tx_len
        if not n:
            return b""
        out = ctypes.string_at(ctypes.addressof(io) + SimIo.tx.offset, n)
        io.tx_len = 0
        return out

    def set_stream_paused(self, paused: bool) -> None:
        self.lib.sim_set_paused(int(paused))

    def send_sample(self) -> None:
        self.lib.sim_send_sample()

    def stats(self) -> dict[str, int]:
        self.lib.sim_stats(self._stats)
        return dict(zip(STATS_NAMES, self._stats, strict=True))
