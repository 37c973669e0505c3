"""The fake robot with the real firmware: the C board (firmware_bridge/board) in the loop.

``CFirmware`` has the interface of ``FakeFirmware`` (``receive``, ``advance_to``,
``stats``), so ``PtyServer`` serves either. Behind it the host build of the C firmware runs
at its 1 kHz tick against the ``SimRobot``: before each tick the simulation advances one
millisecond with the duty the board last set, the board reads the encoders, runs its
watchdog and PID and sets the duty (``SimRobot.set_duty``: the simulator's own PID is not
used), and its telemetry samples the simulated IMU, ADC and motion capture. The board's
UART is the pseudo-terminal. Lockstep (docs/protocol.md, "--clock lockstep") is arranged
here, around the unchanged firmware: the bytes are fed one frame at a time, and after each
well-formed SET_LEG_VELOCITY the board runs 100 ticks with its stream paused and then sends
one sample.
"""

from __future__ import annotations

from typing import Protocol

from firmware_bridge.board.host import HostBoard
from firmware_bridge.fake.firmware import LOCKSTEP_PERIOD_MS, Simulation
from firmware_bridge.frame import COUNTER_NAMES

DEVICE_ID = 0x51A0_0002
TICK_S = 1e-3


class CSimulation(Simulation, Protocol):
    """What the C board needs of the simulator beyond ``Simulation``: raw encoder counts."""

    def encoder_counts(self) -> tuple[int, int]: ...


class CFirmware:
    """The C board on a 1 ms tick around ``sim`` (a ``SimRobot``)."""

    def __init__(self, sim: CSimulation, *, lockstep: bool) -> None:
        self.sim = sim
        self.lockstep = lockstep
        self.tick_ms = 0
        self.board = HostBoard(
            name="sim-c-lockstep" if lockstep else "sim-c-realtime",
            device_id=DEVICE_ID,
            encoders=sim.encoder_counts(),
            sample=self._sample,
        )
        self.board.take_output()  # its reset 0x00: the pty server sends its own
        self.board.set_stream_paused(lockstep)
        self._duty = (0, 0)
        sim.set_duty(0, 0)
        self._trips = 0
        self.watchdog_trips: list[tuple[float, float]] = []  # (last command s, trip s)

    def _sample(self) -> tuple:
        t, p = self.sim.telemetry(), self.sim.pose()
        return (
            (t.gyro_x, t.gyro_y, t.gyro_z),
            (t.accel_x, t.accel_y, t.accel_z),
            (t.bemf_left, t.bemf_right),
            t.battery_mv,
            (p.x, p.y, p.z, p.roll, p.pitch, p.yaw),
        )

    # --- input ----------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Executes every command ``data`` completes; returns the bytes to send back."""
        if not self.lockstep:
            self.board.receive(data)
            return self.board.take_output()
        out = []
        start = 0
        while start < len(data):
            end = data.find(b"\x00", start)
            end = len(data) if end < 0 else end + 1
            before = self.board.stats()["leg_velocity_frames"]
            self.board.receive(data[start:end])
            out.append(self.board.take_output())
            if self.board.stats()["leg_velocity_frames"] != before:
                out.append(self._run(LOCKSTEP_PERIOD_MS))
                self.board.send_sample()
                out.append(self.board.take_output())
            start = end
        return b"".join(out)

    def advance_to(self, tick_ms: int) -> bytes:
        """Runs the board until ``tick_ms`` (realtime clock); returns what it sent."""
        return self._run(tick_ms - self.tick_ms)

    # --- time -----------------------------------------------------------------------
    def _run(self, n_ms: int) -> bytes:
        out = []
        sim, board = self.sim, self.board
        for _ in range(n_ms):
            sim.step(TICK_S)
            self.tick_ms += 1
            trips = board.tick(self.tick_ms * 1000, sim.encoder_counts())
            duty = board.duty
            if duty != self._duty:
                sim.set_duty(*duty)
                self._duty = duty
            if trips != self._trips:
                self._trips = trips
                s = board.stats()
                self.watchdog_trips.append(
                    (s["last_command_us"] * 1e-6, s["watchdog_trip_us"] * 1e-6)
                )
            if board.io.tx_len:
                out.append(board.take_output())
        return b"".join(out)

    def stats(self) -> dict[str, object]:
        s = self.board.stats()
        return {
            "sim_time_s": self.tick_ms * 1e-3,
            "rx": {name: s[name] for name in COUNTER_NAMES},
            "tx_frames": s["tx_frames"],
            "nacks_sent": s["nacks_sent"],
            "watchdog_trips": [list(t) for t in self.watchdog_trips],
            "board": "c",
        }
