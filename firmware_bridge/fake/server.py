"""The fake robot's line: a pseudo-terminal, fault injection and the event loop.

``PtyServer`` owns the master side of a pseudo-terminal whose slave path the host
opens like any serial device. One thread, one ``select`` loop: read the host's bytes,
pass them through the receive-side ``FaultyChannel`` into ``FakeFirmware``, run the
board clock (wall clock in realtime, commands in lockstep), and write the replies
through the send-side channel. A scheduled disconnect closes the pseudo-terminal, and
later opens a new one and re-points the ``--link`` symlink, as a replugged USB adapter
would come back.
"""

from __future__ import annotations

import errno
import os
import random
import select
import sys
import time
import tty
from typing import TYPE_CHECKING, TextIO

from firmware_bridge.fake.faults import FaultSpec, FaultyChannel
from firmware_bridge.fake.firmware import FakeFirmware
from robot_contract.errors import ConfigError

if TYPE_CHECKING:
    from firmware_bridge.fake.c_firmware import CFirmware

MAX_PENDING_OUT = 1 << 16
"""Bytes kept for a host that is not reading; beyond this the oldest are dropped."""
MAX_LAG_S = 0.5
"""Realtime: if the simulation falls this far behind the wall clock, skip ahead."""


class PtyServer:
    """Serves ``firmware`` on a pseudo-terminal until ``stop()`` (or a signal) is called."""

    def __init__(
        self,
        firmware: FakeFirmware | CFirmware,
        *,
        faults: FaultSpec | None = None,
        link: str | None = None,
        seed: int = 0,
        out: TextIO = sys.stdout,
        log: TextIO = sys.stderr,
    ) -> None:
        self.firmware = firmware
        self.faults = faults or FaultSpec()
        self.link = link
        self._out, self._log = out, log
        rng = random.Random(seed)
        self.rx = FaultyChannel(self.faults, random.Random(rng.getrandbits(64)))
        self.tx = FaultyChannel(self.faults, random.Random(rng.getrandbits(64)))
        self._master: int | None = None
        self._slave: int | None = None
        self.path: str | None = None
        self._pending_out = bytearray()
        self._stopping = False
        self.disconnects = 0
        self.tx_overflow_bytes = 0
        self.lag_skips = 0

    def stop(self) -> None:
        self._stopping = True

    # --- pseudo-terminal --------------------------------------------------------------
    def open_pty(self) -> str:
        master, slave = os.openpty()
        # Raw before any host opens it: no echo, no line editing, no CR/LF mapping.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        path = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.tmp{os.getpid()}"
            try:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                os.symlink(path, tmp)
                os.replace(tmp, self.link)  # atomic: a reconnecting host never sees a gap
            except OSError as exc:
                self._close_pty()
                raise ConfigError(
                    f"--link {self.link!r}: cannot make the symlink: {exc.strerror}"
                ) from None
        self.path = path  # set only once serving can start (``roach sim`` reports stats)
        self._pending_out = bytearray(b"\x00")  # ends any partial frame at the host
        return path

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)

    # --- loop -------------------------------------------------------------------------
    def run(self) -> None:
        """Opens the pty (unless ``open_pty`` was called already), prints its path as the
        first stdout line, serves until stopped."""
        path = self.path if self._master is not None and self.path else self.open_pty()
        print(path, file=self._out, flush=True)
        fw = self.firmware
        start = time.monotonic()
        clock0 = start - fw.tick_ms * 1e-3  # wall time of board tick 0
        cuts = list(self.faults.disconnects)
        reopen_at: float | None = None
        try:
            while not self._stopping:
                now = time.monotonic()
                if cuts and now - start >= cuts[0][0] and reopen_at is None:
                    reopen_at = now + cuts.pop(0)[1]
                    self._disconnect()
                if reopen_at is not None and now >= reopen_at:
                    reopen_at = None
                    print(f"roach sim: line back on {self.open_pty()}", file=self._log, flush=True)
                self._wait(self._timeout(now, reopen_at))
                now = time.monotonic()
                if not fw.lockstep:
                    target = int((now - clock0) * 1000)
                    if target - fw.tick_ms > MAX_LAG_S * 1000:
                        self.lag_skips += 1
                        clock0 = now - fw.tick_ms * 1e-3
                        target = fw.tick_ms
                    self._send(fw.advance_to(target), now)
                incoming = self.rx.pop_due(now)
                if incoming:
                    self._send(fw.receive(incoming), time.monotonic())
                self._flush(time.monotonic())
        finally:
            self._close_pty()

    def _timeout(self, now: float, reopen_at: float | None) -> float:
        t = 0.002 if not self.firmware.lockstep else 0.05
        for due in (self.rx.next_due(), self.tx.next_due(), reopen_at):
            if due is not None:
                t = min(t, max(0.0, due - now))
        return t

    def _wait(self, timeout: float) -> None:
        master = self._master
        if master is None:
            time.sleep(timeout)
            return
        wlist = [master] if self._pending_out else []
        readable, _, _ = select.select([master], wlist, [], timeout)
        if readable:
            try:
                data = os.read(master, 65536)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                return
            self.rx.push(data, time.monotonic())

    def _send(self, data: bytes, now: float) -> None:
        if self._master is None:  # line cut: the board talks to nobody
            self.tx.lost_disconnected += data.count(b"\x00")
        elif data:
            self.tx.push(data, now)

    def _flush(self, now: float) -> None:
        data = self.tx.pop_due(now)
        if self._master is None:
            if data:
                self.tx.lost_disconnected += data.count(b"\x00")
            return
        self._pending_out += data
        if len(self._pending_out) > MAX_PENDING_OUT:
            cut = len(self._pending_out) - MAX_PENDING_OUT
            self.tx_overflow_bytes += cut
            del self._pending_out[:cut]
        if self._pending_out:
            try:
                n = os.write(self._master, self._pending_out)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                return
            del self._pending_out[:n]

    def _disconnect(self) -> None:
        self.disconnects += 1
        print("roach sim: line cut", file=self._log, flush=True)
        self._close_pty()
        self.rx.discard()
        self.tx.discard()
        self._pending_out.clear()

    def stats(self) -> dict[str, object]:
        return {
            "firmware": self.firmware.stats(),
            "faults_host_to_robot": self.rx.counters(),
            "faults_robot_to_host": self.tx.counters(),
            "disconnects": self.disconnects,
            "tx_overflow_bytes": self.tx_overflow_bytes,
            "lag_skips": self.lag_skips,
        }
