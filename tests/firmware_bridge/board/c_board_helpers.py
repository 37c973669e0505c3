"""Talking to the C board of the host library in process: commands in, messages out."""

from __future__ import annotations

from firmware_bridge.board.host import HostBoard
from firmware_bridge.frame import FrameDecoder
from firmware_bridge.messages import REPLY_TYPES, Message, decode_message, encode_message


class Bench:
    """A C board on the bench: encoders that the test sets, ticks that the test runs."""

    def __init__(self, encoders: tuple[int, int] = (0, 0)) -> None:
        self.encoders = encoders
        self.board = HostBoard(name="bench", device_id=7, encoders=encoders, sample=self._sample)
        self.decoder = FrameDecoder(REPLY_TYPES)
        self.decoder.feed(self.board.take_output())  # the reset 0x00
        self.seq = 0
        self.tick_ms = 0

    @staticmethod
    def _sample() -> tuple:
        return (1, 2, 3), (4, 5, 4096), (100, -100), 3900, (0.1, 0.2, 0.3, 0.0, 0.0, 1.0)

    def send(self, msg: Message) -> list[Message]:
        """Sends ``msg`` with the next sequence number; returns what the board answered."""
        self.seq += 1
        self.board.receive(encode_message(msg, self.seq))
        return self.output()

    def output(self) -> list[Message]:
        return [decode_message(f) for f in self.decoder.feed(self.board.take_output())]

    def tick(self, n: int = 1) -> list[Message]:
        """Runs ``n`` board ticks at the present encoder counts; returns what was sent."""
        for _ in range(n):
            self.tick_ms += 1
            self.board.tick(self.tick_ms * 1000, self.encoders)
        return self.output()
