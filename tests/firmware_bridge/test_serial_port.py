"""The port layer on a real pseudo-terminal: parser errors, port loss, reconnect."""

from __future__ import annotations

import os
import time
import tty

import pytest

from firmware_bridge.port import SerialPort, open_serial
from robot_contract.errors import LinkError


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def _wait(cond, timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_parser_error_is_kept_and_reading_goes_on(tmp_path):
    """A raising callback is counted as a parser error; later bytes still arrive."""
    master, slave, path = _pty()
    got: list[bytes] = []

    def on_data(chunk: bytes) -> None:
        if not got:
            got.append(b"")
            raise ValueError("boom")
        got.append(chunk)

    port = SerialPort(path, on_data, reconnect=False)
    try:
        assert os.read(master, 16) == b"\x00"  # the greeting delimiter
        os.write(master, b"first")
        assert _wait(lambda: port.parser_errors == 1)
        os.write(master, b"second")
        assert _wait(lambda: b"".join(got).endswith(b"second"))
        assert port.last_parser_error == "ValueError: boom" and port.port_errors == 0
        assert port.write(b"abc") and os.read(master, 16) == b"abc"
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def test_port_reconnects_when_link_is_recreated(tmp_path):
    """Closing the pty is a port error; a new pty behind the same symlink is reopened."""
    link = tmp_path / "tty"
    master, slave, path = _pty()
    os.symlink(path, link)
    got = bytearray()
    connects = []
    port = SerialPort(str(link), got.extend, on_connect=lambda: connects.append(1))
    try:
        os.close(master)
        os.close(slave)
        os.unlink(link)
        assert _wait(lambda: not port.connected)
        assert port.port_errors == 1 and port.last_port_error
        assert not port.write(b"lost")
        master, slave, path = _pty()
        os.symlink(path, link)
        assert port.wait_connected(3.0)
        assert port.reconnects == 1 and len(connects) == 2
        os.write(master, b"back")
        assert _wait(lambda: bytes(got) == b"back")
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def test_open_missing_port_names_it():
    """A missing device is a one-line LinkError naming the path."""
    with pytest.raises(LinkError, match="'/dev/nope0'") as info:
        open_serial("/dev/nope0")
    assert "\n" not in str(info.value)


def test_pyserial_url_runs_the_same_code():
    """A pyserial URL (loop://) opens through the same port class and echoes bytes."""
    got = bytearray()
    port = SerialPort("loop://", got.extend, reconnect=False)
    try:
        assert port.write(b"\x05abcd\x00")
        assert _wait(lambda: bytes(got).endswith(b"\x05abcd\x00"))
    finally:
        port.close()
