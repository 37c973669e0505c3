"""Where a bundle goes: a folder on this computer, or ``user@host:/path`` over OpenSSH.

The remote side is reached only through the system's ``ssh`` and ``scp``, with host
keys checked (``StrictHostKeyChecking=yes``: an unknown or changed host key is refused,
never accepted) and no password prompt (``BatchMode=yes``). ``--identity`` picks the
key, ``--known-hosts`` the file of trusted host keys, ``--ssh-port`` the port.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from robot_contract.errors import RoachError

SSH_TARGET = re.compile(r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^@/:\s]+):(?P<path>/.*)$")


class DeployError(RoachError):
    """The target could not be reached, or refused the bundle (one line)."""


@dataclass(frozen=True)
class SshOptions:
    identity: str | None = None
    known_hosts: str | None = None
    port: int | None = None
    timeout_s: float = 120.0

    def ssh_args(self, port_flag: str) -> list[str]:
        args = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        args += ["-o", "ConnectTimeout=10"]
        if self.identity:
            args += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            args += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.port:
            args += [port_flag, str(self.port)]
        return args


@dataclass(frozen=True)
class Target:
    """A deployment folder, local (``host`` None) or over ssh."""

    root: str
    host: str | None = None
    user: str | None = None
    ssh: SshOptions = field(default_factory=SshOptions)

    @property
    def where(self) -> str:
        return self.root if self.host is None else f"{self.dest}:{self.root}"

    @property
    def dest(self) -> str:
        return f"{self.user}@{self.host}" if self.user else str(self.host)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Runs ``argv`` on the target; DeployError if ssh itself fails (exit 255)."""
        if self.host is None:
            cmd = argv
        else:
            cmd = ["ssh", *self.ssh.ssh_args("-p"), self.dest, shlex.join(argv)]
        res = self._subprocess(cmd, f"{self.where}: no answer")
        if self.host is not None and res.returncode == 255:
            raise DeployError(self._ssh_failure(res.stderr))
        return res

    def copy_in(self, bundle: Path, into: str) -> None:
        """Copies the folder ``bundle`` to ``into/<its name>`` on the target (replacing a
        half-copied one). The active bundle is never touched: a cut copy leaves only an
        incomplete folder under ``incoming``."""
        dest = f"{into}/{bundle.name}"
        if self.host is None:
            shutil.rmtree(dest, ignore_errors=True)
            Path(into).mkdir(parents=True, exist_ok=True)
            shutil.copytree(bundle, dest)
            return
        self._check(
            self.run(["sh", "-c", f"rm -rf {shlex.quote(dest)} && mkdir -p {shlex.quote(into)}"])
        )
        cmd = [
            "scp",
            "-q",
            "-r",
            "-p",
            *self.ssh.ssh_args("-P"),
            str(bundle),
            f"{self.dest}:{into}/",
        ]
        res = self._subprocess(cmd, f"copy to {self.where} did not finish")
        if res.returncode != 0:
            raise DeployError(f"copy to {self.where} failed: {self._ssh_failure(res.stderr)}")

    def _subprocess(self, cmd: list[str], late: str) -> subprocess.CompletedProcess[str]:
        """Runs ``cmd`` here; DeployError if it is not installed or is not done within the
        timeout (``late``, then "within N s")."""
        try:
            return subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=self.ssh.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise DeployError(f"cannot run {cmd[0]!r}: not installed") from None
        except subprocess.TimeoutExpired:
            raise DeployError(f"{late} within {self.ssh.timeout_s:g} s") from None

    def _check(self, res: subprocess.CompletedProcess[str]) -> None:
        if res.returncode != 0:
            raise DeployError(f"{self.where}: {_last_line(res.stderr)}")

    def _ssh_failure(self, stderr: str) -> str:
        if (
            "Host key verification failed" in stderr
            or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr
        ):
            return (
                f"ssh to {self.host}: host key verification failed (the host's key is not the "
                "one in known_hosts; check the host, then correct known_hosts or --known-hosts)"
            )
        return f"ssh to {self.host}: {_last_line(stderr)}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "failed with no message"


def parse_target(text: str, ssh: SshOptions) -> Target:
    """``user@host:/abs/path`` (ssh) or a local folder."""
    m = SSH_TARGET.match(text)
    if m:
        return Target(m["path"], m["host"], m["user"], ssh)
    if ":" in text.split("/", 1)[0]:
        raise DeployError(f"target {text!r}: give user@host:/absolute/path or a local folder")
    return Target(str(Path(text).absolute()))


def local_python() -> str:
    return sys.executable
