"""SerialRobot against a board that answers with the wrong reply type, on a real pty."""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator

import pytest

from firmware_bridge.frame import FrameDecoder
from firmware_bridge.messages import Ack, encode_message
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import ProtocolError


@pytest.fixture
def ack_only_board() -> Iterator[str]:
    """A pty whose far end ACKs every frame it receives, whatever it was; yields its path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def serve() -> None:
        dec = FrameDecoder()
        seq = 0
        while not stop.is_set():
            if not select.select([master], [], [], 0.02)[0]:
                continue
            for frame in dec.feed(os.read(master, 4096)):
                os.write(master, encode_message(Ack(frame.seq, frame.type), seq))
                seq += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield os.ttyname(slave)
    finally:
        stop.set()
        thread.join(2.0)
        os.close(master)
        os.close(slave)


def test_wrong_reply_type_is_one_line_protocol_error(ack_only_board: str):
    """An ACK where HELLO_REPLY or STATUS is due raises a one-line ProtocolError, no assert."""
    robot = SerialRobot(ack_only_board, reconnect=False)
    try:
        with pytest.raises(ProtocolError, match="answered Hello with Ack") as info:
            robot.hello(timeout_s=1.0)
        assert "\n" not in str(info.value)
        with pytest.raises(ProtocolError, match="answered GetStatus with Ack") as info:
            robot.status()
        assert "\n" not in str(info.value)
    finally:
        robot.close()
