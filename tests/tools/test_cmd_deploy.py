"""`roach deploy` to a local folder and to a real `sshd` on 127.0.0.1 (throwaway host
key, client key and known_hosts): copied, verified, activated, rolled back; a tampered
or incomplete bundle, or one the robot's Python cannot run, refused with the active
bundle unchanged; a host whose key does not match refused; the systemd unit passes
`systemd-analyze verify`."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import run_roach

from onboard.deploy.bundle import build_bundle
from onboard.deploy.transport import SshOptions, Target
from onboard.deploy.unit import UnitSettings, unit_text

pytestmark = pytest.mark.timeout(600)
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


@pytest.fixture(scope="module")
def robot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One deployment folder for the module's deploys."""
    return tmp_path_factory.mktemp("deploy") / "robot"


def _current(root: Path) -> str:
    return os.readlink(root / "current").split("/")[-1]


def _config(tmp: Path, steps: int) -> Path:
    p = tmp / f"run-{steps}.toml"
    p.write_text(f"[loop]\nsteps = {steps}\n")
    return p


def _deploy(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_roach("deploy", target, "--python", sys.executable, *args, timeout=400)


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stdout + res.stderr
    assert lines[0].startswith("roach deploy: error: ")
    return lines[0]


def _tampered_bundle(tmp: Path, root: str, how: str) -> Path:
    """A bundle as `roach deploy` builds it, then changed: one byte of a code file, or a
    model file missing (as a cut copy leaves it); ``intact`` leaves it as built."""
    out = tmp / f"bundle-{how}"
    bundle = build_bundle(
        out, [Path("models/grbal.onnx")], _config(tmp, 77), UnitSettings(root, sys.executable)
    )
    if how == "intact":
        return bundle
    if how == "tampered":
        f = bundle / "code" / "onboard" / "planner.py"
        f.write_text(f.read_text().replace("random", "rAndom", 1))
    else:
        (bundle / "models" / "grbal.onnx").unlink()
    return bundle


def _install(
    target: Target, bundle: Path, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    """What `roach deploy` runs once the copy is in: the bundle's own activate.py, which
    runs the bundle with ``python``."""
    target.copy_in(bundle, f"{target.root}/incoming")
    b = f"{target.root}/incoming/{bundle.name}"
    return target.run(
        [sys.executable, f"{b}/activate.py", "install", "--root", target.root, "--bundle", b,
         "--python", python],
    )  # fmt: skip


def test_local_folder_deploy_verify_rollback_and_refusals(robot_root: Path, tmp_path: Path) -> None:
    """Two deploys to a folder: each verified and activated, the first kept as previous;
    --verify passes, then names a changed file (exit 1); --rollback switches back; a
    tampered and an incomplete bundle, and one whose start-up check fails on the robot's
    Python, are refused (exit 2) and `current` stays."""
    root = robot_root
    first = _deploy(str(root), "--config", str(_config(tmp_path, 50)))
    print(first.stdout)
    assert first.returncode == 0, first.stderr
    a = _current(root)
    assert f"activated {a}" in first.stdout
    manifest = json.loads((root / "current" / "manifest.json").read_text())
    assert manifest["models"]["models/grbal.onnx"]["algorithm"] == "grbal"
    assert manifest["code_version"]["package"] and len(manifest["files"]) > 40

    second = _deploy(str(root), "--config", str(_config(tmp_path, 60)))
    assert second.returncode == 0, second.stderr
    b = _current(root)
    assert b != a and f"activated {b} (previous {a})" in second.stdout
    assert (root / "current" / "config" / "run.toml").read_text() == "[loop]\nsteps = 60\n"

    ok = _deploy(str(root), "--verify")
    assert ok.returncode == 0 and f"active bundle {b}: all " in ok.stdout, ok.stderr
    changed = root / "current" / "code" / "onboard" / "loop.py"
    changed.write_text(changed.read_text() + "\n# changed on the robot\n")
    bad = _deploy(str(root), "--verify")
    print(bad.stdout)
    assert bad.returncode == 1 and "file code/onboard/loop.py differs" in bad.stdout

    back = _deploy(str(root), "--rollback")
    assert back.returncode == 0, back.stderr
    assert _current(root) == a and f"rolled back to {a}" in back.stdout
    assert _deploy(str(root), "--verify").returncode == 0

    target = Target(str(root))
    for how, says in (("tampered", "code/onboard/planner.py differs"),
                      ("incomplete", "models/grbal.onnx is missing")):  # fmt: skip
        res = _install(target, _tampered_bundle(tmp_path, str(root), how))
        print(how, res.stderr.strip())
        assert res.returncode == 2 and says in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert _current(root) == a
    no_numpy = tmp_path / "python-without-numpy"
    no_numpy.write_text(
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'numpy'\" >&2\nexit 1\n"
    )
    no_numpy.chmod(0o755)
    res = _install(target, _tampered_bundle(tmp_path, str(root), "intact"), str(no_numpy))
    print(res.stderr.strip())
    assert res.returncode == 2 and "does not run here: ModuleNotFoundError" in res.stderr
    assert _current(root) == a
    assert _deploy(str(root), "--verify").returncode == 0
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root / "current" / "code")}
    cli = subprocess.run([sys.executable, "-m", "tools.cli", "run", "--help"], cwd="/", env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cli.returncode == 0 and "--port" in cli.stdout, cli.stderr  # the bundle runs alone


def test_rollback_without_a_previous_bundle_is_one_line(tmp_path: Path) -> None:
    """Nothing deployed: --verify and --rollback are one line and exit 2."""
    assert "nothing deployed there yet" in _one_error_line(_deploy(str(tmp_path), "--verify"))
    assert "nothing deployed there yet" in _one_error_line(_deploy(str(tmp_path), "--rollback"))


@dataclass
class Sshd:
    port: int
    user: str
    identity: Path
    known_hosts: Path
    wrong_known_hosts: Path

    def args(self, known_hosts: Path | None = None) -> list[str]:
        return ["--identity", str(self.identity), "--ssh-port", str(self.port),
                "--known-hosts", str(known_hosts or self.known_hosts)]  # fmt: skip


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().split()[:2]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1 with a throwaway host key, accepting a throwaway client key."""
    if SSHD is None:
        if os.environ.get("CI"):
            pytest.fail("sshd is not installed (.ci/run installs openssh-server)")
        pytest.skip("sshd is not installed (apt-get install openssh-server)")
    d = tmp_path_factory.mktemp("sshd")
    host = _keygen(d / "host_key")
    other = _keygen(d / "other_host_key")
    _keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host)}\n")
    (d / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(other)}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege-separation directory
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.05)
        yield Sshd(
            port, getpass.getuser(), d / "client_key", d / "known_hosts", d / "wrong_known_hosts"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ssh_deploy_verify_rollback_and_refusals(
    sshd: Sshd, robot_root: Path, tmp_path: Path
) -> None:
    """Over ssh to the test's sshd: deploy, deploy again, verify, roll back; a tampered
    bundle copied over is refused and `current` stays; all through the system's OpenSSH."""
    root = robot_root
    dest = f"{sshd.user}@127.0.0.1:{root}"
    first = _deploy(dest, "--config", str(_config(tmp_path, 70)), *sshd.args())
    print(first.stdout, first.stderr)
    assert first.returncode == 0, first.stderr
    a = _current(root)
    assert f"copied to {sshd.user}@127.0.0.1:{root}/incoming/{a}" in first.stdout
    second = _deploy(dest, "--config", str(_config(tmp_path, 80)), *sshd.args())
    assert second.returncode == 0, second.stderr
    b = _current(root)
    verify = _deploy(dest, "--verify", *sshd.args())
    assert verify.returncode == 0 and f"active bundle {b}: all" in verify.stdout, verify.stderr
    back = _deploy(dest, "--rollback", *sshd.args())
    assert back.returncode == 0 and _current(root) == a, back.stderr

    ssh = SshOptions(identity=str(sshd.identity), known_hosts=str(sshd.known_hosts), port=sshd.port)
    target = Target(str(root), "127.0.0.1", sshd.user, ssh)
    res = _install(target, _tampered_bundle(tmp_path, str(root), "tampered"))
    assert res.returncode == 2 and "code/onboard/planner.py differs" in res.stderr, res.stderr
    assert _current(root) == a


def test_ssh_host_with_another_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    """known_hosts holds another key for the host: nothing is copied, one line, exit 2."""
    root = tmp_path / "robot"
    res = _deploy(f"{sshd.user}@127.0.0.1:{root}", *sshd.args(sshd.wrong_known_hosts))
    line = _one_error_line(res)
    print(line)
    assert "host key verification failed" in line
    assert not root.exists()


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit `roach deploy` installs: Type=notify, WatchdogSec, Restart=on-failure, the
    serial device, a user in dialout; `systemd-analyze verify` is clean."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    text = unit_text(UnitSettings(root=str(tmp_path / "robot"), python=sys.executable))
    for line in ("Type=notify", "WatchdogSec=2", "Restart=on-failure", "User=roach",
                 "SupplementaryGroups=dialout", "--port /dev/ttyAMA0"):  # fmt: skip
        assert line in text
    unit = tmp_path / "roach-run.service"
    unit.write_text(text)
    res = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "roach-run.service" not in res.stderr, res.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(text.replace(sys.executable, "/nonexistent/python"))
    assert subprocess.run([analyze, "verify", str(broken)], capture_output=True).returncode != 0
