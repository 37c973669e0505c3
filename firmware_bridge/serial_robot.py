"""``SerialRobot``: the ``Robot`` interface over the serial protocol of docs/protocol.md.

The same class drives the real motor board (a device path) and the fake robot
(the pseudo-terminal path ``roach sim`` prints): bytes -> ``FrameDecoder`` -> message
codecs -> the latest telemetry and pose, stamped with this computer's monotonic clock.

Periodic commands (set_leg_velocity, set_duty, stop) are sent and not waited for: the
next one supersedes a lost one, and a retry would double-step a lockstep simulation.
Configuration commands wait for their ACK and are retried, since a lost one would
leave the board in the wrong state; a NACK raises ProtocolError.
"""

from __future__ import annotations

import threading
import time

from firmware_bridge.frame import PROTOCOL_VERSION, FrameDecoder
from firmware_bridge.messages import (
    REPLY_TYPES,
    Ack,
    ClearEmergencyStop,
    EmergencyStop,
    GetStatus,
    Hello,
    HelloReply,
    Message,
    Nack,
    PoseMsg,
    SetCommandTimeout,
    SetDuty,
    SetLegVelocity,
    SetPidGains,
    StartMotors,
    StartTelemetry,
    Status,
    StopMotors,
    StopTelemetry,
    TelemetryMsg,
    ZeroEncoders,
    decode_message,
    encode_message,
)
from firmware_bridge.port import DEFAULT_BAUDRATE, SerialPort
from firmware_bridge.pose.source import PoseAlignment, PoseSource
from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Robot, Stamped
from robot_contract.errors import LinkError, ProtocolError


class SerialRobot(Robot):
    """A robot on a serial port or pyserial URL. LinkError if the port cannot be opened.

    ``request_timeout_s`` x ``request_attempts`` bounds how long a configuration
    command waits for its answer before LinkError. ``pose_source``: where the pose comes
    from instead of the board's POSE frames (firmware_bridge/pose; the robot closes it);
    ``alignment``: the frame alignment of the board's own POSE frames.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        reconnect: bool = True,
        request_timeout_s: float = 0.3,
        request_attempts: int = 4,
        pose_source: PoseSource | None = None,
        alignment: PoseAlignment | None = None,
    ) -> None:
        self.url = url
        self.pose_source = pose_source
        self._alignment = None if alignment is None or alignment.identity else alignment
        self.serial_poses_ignored = 0
        self._request_timeout_s = request_timeout_s
        self._request_attempts = request_attempts
        self._decoder = FrameDecoder(REPLY_TYPES)
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._seq = 0
        self._waiting: set[int] = set()  # request seqs a caller waits on
        self._replies: dict[int, Message] = {}
        self._tel: Stamped[Telemetry] | None = None
        self._pose: Stamped[Pose] | None = None
        self.telemetry_count = 0
        self.pose_count = 0
        self.nacks = 0
        self.last_nack: Nack | None = None
        self.protocol_errors = 0
        self.last_protocol_error: str | None = None
        self.frames_sent = 0
        self._pings: dict[int, float] = {}  # GET_STATUS seq -> monotonic send time
        self.last_rtt_s: float | None = None
        """Round trip of the last answered ``ping_nowait``, s."""
        self.max_rtt_s = 0.0
        self.pings_answered = 0
        self._port = SerialPort(
            url, self._on_data, on_connect=self._on_connect, baudrate=baudrate, reconnect=reconnect
        )

    # --- Robot interface ----------------------------------------------------------
    def hello(self, timeout_s: float = 1.0) -> dict[str, object]:
        attempts = max(1, round(timeout_s / self._request_timeout_s))
        reply = self.request(Hello(), attempts=attempts)
        if not isinstance(reply, HelloReply):
            raise ProtocolError(
                f"{self.url!r} answered Hello with {type(reply).__name__}, not HelloReply"
            )
        if reply.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"{self.url!r} speaks protocol version {reply.protocol_version}, "
                f"this host speaks {PROTOCOL_VERSION}"
            )
        return {
            "protocol_version": reply.protocol_version,
            "firmware": f"{reply.fw_major}.{reply.fw_minor}.{reply.fw_patch}",
            "device_id": reply.device_id,
            "name": reply.name.decode("ascii", "replace"),
        }

    def set_command_timeout(self, timeout_ms: int) -> None:
        self.request(SetCommandTimeout(int(timeout_ms)))

    def start_telemetry(self, rate_hz: float) -> None:
        self.request(StartTelemetry(round(rate_hz)))

    def stop_telemetry(self) -> None:
        self.request(StopTelemetry())

    def start_motors(self) -> None:
        self.request(StartMotors())

    def start_motors_nowait(self) -> None:
        self.send(StartMotors())

    def stop_telemetry_nowait(self) -> None:
        self.send(StopTelemetry())

    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        self.send(SetLegVelocity.from_rev_s(left_rev_s, right_rev_s))

    def stop(self) -> None:
        self.send(StopMotors())

    def emergency_stop(self) -> None:
        """Latches the board's emergency stop; waits for the ACK (LinkError if none)."""
        self.request(EmergencyStop())

    def latest_telemetry(self) -> Stamped[Telemetry] | None:
        return self._tel

    def latest_pose(self) -> Stamped[Pose] | None:
        if self.pose_source is not None:
            return self.pose_source.latest()
        return self._pose

    def pose_status(self) -> str:
        """What the pose source received, for a "no pose" error ("" for serial frames)."""
        return self.pose_source.status() if self.pose_source is not None else ""

    def wait_for_sample(self, after_monotonic_s: float, timeout_s: float) -> bool:
        if self.pose_source is not None:
            return self.pose_source.wait_for_pose(after_monotonic_s, timeout_s)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pose is None or self._pose.received_monotonic_s <= after_monotonic_s:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        self._port.close()
        if self.pose_source is not None:
            self.pose_source.close()

    # --- the rest of the command set ------------------------------------------------
    def clear_emergency_stop(self) -> None:
        self.request(ClearEmergencyStop())

    def set_duty(self, left: int, right: int) -> None:
        """Open-loop PWM duty, -4000..4000 per side (not waited for; feeds the watchdog)."""
        self.send(SetDuty(int(left), int(right)))

    def set_pid_gains(self, left: tuple[int, ...], right: tuple[int, ...]) -> None:
        """Kp, Ki, Kd, Kaw, Kff per side in firmware fixed-point units."""
        if len(left) != 5 or len(right) != 5:
            raise ProtocolError("set_pid_gains: give 5 gains per side (Kp, Ki, Kd, Kaw, Kff)")
        self.request(SetPidGains(*left, *right))

    def zero_encoders(self) -> None:
        self.request(ZeroEncoders())

    def status(self) -> Status:
        reply = self.request(GetStatus())
        if not isinstance(reply, Status):
            raise ProtocolError(
                f"{self.url!r} answered GetStatus with {type(reply).__name__}, not Status"
            )
        return reply

    # --- transport ------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._port.connected

    def wait_connected(self, timeout_s: float) -> bool:
        return self._port.wait_connected(timeout_s)

    def send(self, msg: Message) -> int:
        """Sends ``msg`` without waiting; returns its sequence number. Never raises on a
        dead link (the write failure is counted; see ``last_error``)."""
        return self._send(msg)[0]

    def ping_nowait(self) -> None:
        """Sends GET_STATUS without waiting; its answer sets ``last_rtt_s`` (the command
        round trip through the link and the board). Unanswered pings are forgotten after
        the next 16."""
        t = time.monotonic()
        seq = self.send(GetStatus())
        with self._cond:
            self._pings[seq] = t
            while len(self._pings) > 16:
                del self._pings[next(iter(self._pings))]

    def sync(self, attempts: int = 3) -> None:
        """One answered GET_STATUS: every frame the board sent before the answer has then
        arrived or shows as a sequence gap. LinkError if no answer comes."""
        self.request(GetStatus(), attempts=attempts)

    def request(self, msg: Message, *, attempts: int | None = None) -> Message:
        """Sends ``msg`` and waits for its answer, retrying. ProtocolError on NACK,
        LinkError when no answer comes."""
        attempts = attempts or self._request_attempts
        for _ in range(attempts):
            seq, _ok = self._send(msg, wait=True)
            deadline = time.monotonic() + self._request_timeout_s
            with self._cond:
                while seq not in self._replies:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._waiting.discard(seq)
                reply = self._replies.pop(seq, None)
            if reply is None:
                continue
            if isinstance(reply, Nack):
                raise ProtocolError(f"{self.url!r}: {type(msg).__name__} {reply.describe()}")
            return reply
        raise LinkError(
            f"no answer from {self.url!r} to {type(msg).__name__} after {attempts} attempts "
            f"of {self._request_timeout_s:g} s (last port error: {self._port.last_port_error})"
        )

    def counters(self) -> dict[str, int]:
        """Receive-side decoder counters plus link and protocol counters."""
        c = self._decoder.counters()
        c.update(
            frames_sent=self.frames_sent,
            write_failures=self._port.write_failures,
            port_errors=self._port.port_errors,
            parser_errors=self._port.parser_errors,
            reconnects=self._port.reconnects,
            pings_answered=self.pings_answered,
            protocol_errors=self.protocol_errors,
            nacks=self.nacks,
            telemetry=self.telemetry_count,
            poses=self.pose_count,
        )
        return c

    def last_error(self) -> str | None:
        """The most recent port, parser or protocol error (None if there was none)."""
        return (
            self._port.last_port_error or self._port.last_parser_error or self.last_protocol_error
        )

    def _send(self, msg: Message, wait: bool = False) -> tuple[int, bool]:
        with self._send_lock:
            seq = self._seq
            self._seq = (seq + 1) & 0xFFFF
            data = encode_message(msg, seq)
            if wait:
                with self._cond:
                    self._waiting.add(seq)
            ok = self._port.write(data)
            self.frames_sent += ok
        return seq, ok

    # --- reader thread ----------------------------------------------------------------
    def _on_connect(self) -> None:
        self._decoder.reset_sequence()

    def _on_data(self, chunk: bytes) -> None:
        now = time.monotonic()
        for frame in self._decoder.feed(chunk):
            try:
                msg = decode_message(frame)
            except ProtocolError as exc:
                self.protocol_errors += 1
                self.last_protocol_error = str(exc)
                continue
            with self._cond:
                if isinstance(msg, TelemetryMsg):
                    self._tel = Stamped(msg.record, now, msg.flags)
                    self.telemetry_count += 1
                elif isinstance(msg, PoseMsg):
                    if self.pose_source is not None:
                        self.serial_poses_ignored += 1
                        continue
                    flags = self._tel.status_flags if self._tel is not None else 0
                    pose = msg.pose if self._alignment is None else self._alignment.apply(msg.pose)
                    self._pose = Stamped(pose, now, flags)
                    self.pose_count += 1
                elif isinstance(msg, Ack | Nack | HelloReply | Status):
                    if isinstance(msg, Nack):
                        self.nacks += 1
                        self.last_nack = msg
                    if msg.request_seq in self._waiting:
                        self._replies[msg.request_seq] = msg
                    sent = self._pings.pop(msg.request_seq, None)
                    if sent is not None and isinstance(msg, Status):
                        self.last_rtt_s = now - sent
                        self.max_rtt_s = max(self.max_rtt_s, self.last_rtt_s)
                        self.pings_answered += 1
                else:
                    self.protocol_errors += 1
                    self.last_protocol_error = f"unexpected {type(msg).__name__} from the robot"
                    continue
                self._cond.notify_all()
