"""``roach deploy TARGET``: bundle the onboard code, models and config, copy them to the
robot, verify and activate them; ``--rollback`` and ``--verify`` (docs/deploy.md).

TARGET is ``user@host:/path`` (through the system's OpenSSH, host keys checked) or a
local folder. The bundle is verified on the target before anything changes there; a
tampered or incomplete one is refused with one line (exit 2) and the active bundle
stays as it was. ``--verify`` re-checks the active bundle and exits 1 if a file differs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from onboard.deploy.bundle import build_bundle
from onboard.deploy.transport import DeployError, SshOptions, Target, parse_target
from onboard.deploy.unit import UnitSettings

HELP = "bundle, copy, verify and activate the code on the robot"
REPO = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="user@host:/opt/roach or a local folder")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--rollback", action="store_true", help="switch back to the previous bundle")
    what.add_argument(
        "--verify", action="store_true", help="re-check the active bundle (exit 1 if it differs)"
    )
    parser.add_argument(
        "--model", action="append", help="model file (repeat; default models/grbal.onnx)"
    )
    parser.add_argument("--config", help="run config (TOML) the service runs with")
    parser.add_argument(
        "--python",
        help="the target's Python with the onboard extra (default: python3 over ssh, this "
        "Python for a local folder)",
    )
    parser.add_argument("--port", default="/dev/ttyAMA0", help="the robot's serial device")
    parser.add_argument("--user", default="roach", help="the service's user (in dialout)")
    parser.add_argument(
        "--systemd-dir", help="also install the unit there, e.g. /etc/systemd/system"
    )
    parser.add_argument("--identity", help="ssh private key (ssh -i)")
    parser.add_argument("--known-hosts", help="known_hosts file with the target's host key")
    parser.add_argument("--ssh-port", type=int, help="ssh port (default 22)")


def run(args: argparse.Namespace) -> int:
    ssh = SshOptions(identity=args.identity, known_hosts=args.known_hosts, port=args.ssh_port)
    target = parse_target(args.target, ssh)
    python = args.python or ("python3" if target.host else sys.executable)
    if args.verify:
        return _remote(target, python, "current", "verify")
    if args.rollback:
        return _remote(target, python, "current", "rollback")
    models = [Path(m) for m in (args.model or [REPO / "models" / "grbal.onnx"])]
    unit = UnitSettings(root=target.root, python=python, port=args.port, user=args.user)
    with tempfile.TemporaryDirectory(prefix="roach-deploy-") as tmp:
        bundle = build_bundle(Path(tmp), models, Path(args.config) if args.config else None, unit)
        print(f"bundle {bundle.name}: {_count(bundle)} files", flush=True)
        incoming = f"{target.root}/incoming"
        target.copy_in(bundle, incoming)
        print(f"copied to {target.where}/incoming/{bundle.name}", flush=True)
    extra = ["--bundle", f"{incoming}/{bundle.name}"]
    if args.systemd_dir:
        extra += ["--systemd-dir", args.systemd_dir]
    return _remote(target, python, f"incoming/{bundle.name}", "install", extra)


def _remote(
    target: Target, python: str, where: str, action: str, extra: list[str] | None = None
) -> int:
    script = f"{target.root}/{where}/activate.py"
    argv = [python, script, action, "--root", target.root, "--python", python, *(extra or [])]
    res = target.run(argv)
    if res.returncode == 2 or (res.returncode != 0 and not res.stdout.strip()):
        err = (res.stderr.strip().splitlines() or ["failed with no message"])[-1]
        if "No such file" in err and "activate.py" in err:
            err = f"no bundle at {target.where}/{where} (nothing deployed there yet?)"
        raise DeployError(f"{target.where}: {err.removeprefix('error: ')}")
    print(res.stdout.strip())
    return res.returncode


def _count(bundle: Path) -> int:
    return sum(1 for p in bundle.rglob("*") if p.is_file())
