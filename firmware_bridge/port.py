"""A serial port with a reader thread that survives its own failures and reconnects.

The port is opened by path or pyserial URL (``serial.serial_for_url``), so a real UART,
a pseudo-terminal and pyserial's ``loop://`` run the same code. The reader thread hands
every received chunk to a callback. It keeps two kinds of failure apart, as pyserial's
``ReaderThread`` does: a *port* error (the device vanished, EIO) closes the port and
starts reconnecting; a *parser* error (the callback raised) is counted and reading goes
on. The last error of either kind is kept for the caller, never swallowed silently.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import serial

from robot_contract.errors import LinkError

DEFAULT_BAUDRATE = 1_000_000
"""docs/protocol.md: 1 Mbaud, 8N1."""


def open_serial(url: str, baudrate: int = DEFAULT_BAUDRATE) -> serial.SerialBase:
    """Opens ``url`` (device path or pyserial URL); LinkError naming the port if it fails."""
    try:
        ser = serial.serial_for_url(
            url, baudrate=baudrate, timeout=0.05, write_timeout=0.2, exclusive=False
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise LinkError(
            f"cannot open serial port {url!r}: {reason} "
            "(give a device path such as /dev/ttyUSB0, the path `roach sim` prints, "
            "or a pyserial URL)"
        ) from None
    return ser


class SerialPort:
    """Byte transport with a reader thread and automatic reconnect.

    ``on_data(chunk)`` runs on the reader thread for every chunk read; ``on_connect()``
    runs there after each (re)open, before any data. ``write`` never raises: it returns
    False when the port is down or the write failed (the error is kept in
    ``last_port_error``). The constructor raises LinkError if the first open fails.
    """

    def __init__(
        self,
        url: str,
        on_data: Callable[[bytes], None],
        *,
        on_connect: Callable[[], None] | None = None,
        baudrate: int = DEFAULT_BAUDRATE,
        reconnect: bool = True,
        reconnect_interval_s: float = 0.05,
    ) -> None:
        self.url = url
        self._on_data = on_data
        self._on_connect = on_connect
        self._baudrate = baudrate
        self._reconnect = reconnect
        self._interval = reconnect_interval_s
        self._lock = threading.Lock()  # guards _ser swaps and writes
        self._closed = threading.Event()
        self.last_port_error: str | None = None
        self.last_parser_error: str | None = None
        self.port_errors = 0
        self.parser_errors = 0
        self.reconnects = 0
        self.bytes_out = 0
        self.write_failures = 0
        self._ser: serial.SerialBase | None = open_serial(url, baudrate)
        self._greet()
        self._thread = threading.Thread(target=self._run, name=f"serial-{url}", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._ser is not None

    def wait_connected(self, timeout_s: float) -> bool:
        """Blocks until the port is open (True) or timeout_s passes (False)."""
        deadline = time.monotonic() + timeout_s
        while not self.connected:
            if self._closed.is_set() or time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def write(self, data: bytes) -> bool:
        with self._lock:
            ser = self._ser
            if ser is None:
                self.write_failures += 1
                return False
            try:
                ser.write(data)
            except (serial.SerialException, OSError) as exc:
                # The reader notices the same failure and reconnects; here only count it.
                self.write_failures += 1
                self.last_port_error = f"write to {self.url!r} failed: {exc}"
                return False
        self.bytes_out += len(data)
        return True

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        with self._lock:
            self._drop_port()

    # --- reader thread ----------------------------------------------------------
    def _greet(self) -> None:
        """A lone delimiter ends any partial frame in the peer's decoder."""
        ser = self._ser
        if ser is None:
            return
        try:
            ser.reset_input_buffer()
            ser.write(b"\x00")
        except (serial.SerialException, OSError) as exc:
            self.last_port_error = f"{self.url!r}: {exc}"

    def _drop_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def _run(self) -> None:
        if self._on_connect is not None:
            self._call(self._on_connect)
        while not self._closed.is_set():
            ser = self._ser
            if ser is None:
                if not self._reconnect:
                    return
                self._try_reopen()
                continue
            try:
                data = ser.read(max(1, ser.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                # Port error: the device went away (EIO on a pty whose master closed,
                # a USB adapter unplugged). TypeError: pyserial closed under us.
                self.port_errors += 1
                self.last_port_error = f"{self.url!r}: {exc}"
                with self._lock:
                    self._drop_port()
                continue
            if data:
                self._call(self._on_data, data)

    def _call(self, fn: Callable[..., None], *args: bytes) -> None:
        try:
            fn(*args)
        except Exception as exc:  # parser error: keep reading, hand the error on
            self.parser_errors += 1
            self.last_parser_error = f"{type(exc).__name__}: {exc}"

    def _try_reopen(self) -> None:
        try:
            ser = open_serial(self.url, self._baudrate)
        except LinkError as exc:
            self.last_port_error = str(exc)
            self._closed.wait(self._interval)
            return
        with self._lock:
            if self._closed.is_set():
                ser.close()
                return
            self._ser = ser
            self.reconnects += 1
            self._greet()
        if self._on_connect is not None:
            self._call(self._on_connect)
