"""The robot's side of ``roach deploy``: verify, activate, roll back, re-check a bundle.

Shipped inside every bundle as ``activate.py`` and run there with the robot's Python
(standard library only: it must work before anything of the bundle is trusted)::

    python3 ROOT/incoming/ID/activate.py install  --root ROOT --bundle ROOT/incoming/ID
    python3 ROOT/current/activate.py     verify   --root ROOT
    python3 ROOT/current/activate.py     rollback --root ROOT

Layout under ROOT (docs/deploy.md): ``incoming/ID`` where a copy lands, ``versions/ID``
the installed bundles, ``current`` and ``previous`` symlinks to two of them. ``install``
verifies every file against ``manifest.json`` (sha256 and size, no file missing, none
added) before anything changes; moves the bundle to ``versions/ID``; switches
``current`` with one ``rename`` (atomic: a reader sees the old or the new bundle, never
neither); runs the controller's start-up work once through the new ``current`` path the
service uses (``onboard/deploy/check.py``); and switches back if that fails (``rollback``
checks too). A refused bundle leaves ``current`` as it was.

Exit codes: 0 done; 1 ``verify`` found a difference; 2 refused (one line on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

MANIFEST = "manifest.json"
UNIT_FILE = "systemd/roach-run.service"
IGNORED_DIRS = {"__pycache__"}
"""Written on the target after activation (bytecode): not checked."""


class Refused(Exception):
    """The bundle or the target is not in a state to do what was asked."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(bundle: Path) -> dict:
    try:
        manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(f"{bundle}: no {MANIFEST} (bundle incomplete)") from None
    except (OSError, ValueError) as exc:
        raise Refused(f"{bundle}/{MANIFEST}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise Refused(f"{bundle}/{MANIFEST}: no 'files' table")
    return manifest


def differences(bundle: Path) -> list[str]:
    """Every way ``bundle`` differs from its manifest, one line each (empty: it matches)."""
    files: dict = load_manifest(bundle)["files"]
    found = []
    for rel, entry in sorted(files.items()):
        p = bundle / rel
        if not p.is_file():
            found.append(f"file {rel} is missing (bundle incomplete)")
        elif p.stat().st_size != entry["size"] or sha256(p) != entry["sha256"]:
            found.append(f"file {rel} differs from the manifest (sha256 mismatch)")
    for dirpath, dirnames, filenames in os.walk(bundle):
        dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(bundle).as_posix()
            if rel != MANIFEST and rel not in files:
                found.append(f"file {rel} is not in the manifest")
    return found


def verify_bundle(bundle: Path) -> dict:
    """The manifest, or Refused naming the first difference and how many there are."""
    found = differences(bundle)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise Refused(f"bundle {bundle.name}: {found[0]}{more}")
    return load_manifest(bundle)


def switch(link: Path, target: str) -> None:
    """Points ``link`` at ``target`` (relative) with one rename: atomic."""
    tmp = link.with_name(f".{link.name}.tmp{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def active(root: Path, name: str = "current") -> str | None:
    link = root / name
    return Path(os.readlink(link)).name if link.is_symlink() else None


def check(root: Path, manifest: dict, python: str) -> None:
    """Runs the controller's start-up work (load the model and the config, adapt, plan)
    once with the robot's Python through the path the service imports the code from
    (``current/code``); Refused with its last line if it fails."""
    cur = root / "current"
    env = {**os.environ, "PYTHONPATH": str(cur / "code"), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [python, "-m", "onboard.deploy.check", "--model", str(cur / manifest["model"])]
    if manifest.get("config"):
        cmd += ["--config", str(cur / manifest["config"])]
    try:
        res = subprocess.run(cmd, env=env, cwd=str(cur), capture_output=True, text=True)
    except OSError as exc:
        raise Refused(f"cannot run {python!r} to check the bundle: {exc}") from None
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise Refused(f"the bundle does not run here: {last}")


def install(root: Path, bundle: Path, python: str, systemd_dir: str | None) -> str:
    manifest = verify_bundle(bundle)
    bundle_id = manifest["bundle_id"]
    versions = root / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    dest = versions / bundle_id
    if dest.exists():  # the same bundle again: keep the installed copy, checked
        verify_bundle(dest)
        shutil.rmtree(bundle)
    else:
        os.replace(bundle, dest)
    old = active(root)
    switch(root / "current", f"versions/{bundle_id}")
    try:
        check(root, manifest, python)
    except Refused:
        if old is not None:
            switch(root / "current", f"versions/{old}")
        else:
            (root / "current").unlink()
        raise
    if old is not None and old != bundle_id:
        switch(root / "previous", f"versions/{old}")
    if systemd_dir:
        shutil.copyfile(dest / UNIT_FILE, Path(systemd_dir) / Path(UNIT_FILE).name)
    return f"activated {bundle_id}" + (f" (previous {old})" if old and old != bundle_id else "")


def rollback(root: Path, python: str) -> str:
    cur, prev = active(root), active(root, "previous")
    if prev is None or not (root / "versions" / prev).is_dir():
        raise Refused(f"{root}: no previous bundle to roll back to")
    manifest = verify_bundle(root / "versions" / prev)
    switch(root / "current", f"versions/{prev}")
    try:
        check(root, manifest, python)
    except Refused:
        if cur is not None:
            switch(root / "current", f"versions/{cur}")
        raise
    if cur is not None:
        switch(root / "previous", f"versions/{cur}")
    return f"rolled back to {prev} (previous {cur})"


def verify_active(root: Path) -> tuple[int, str]:
    cur = active(root)
    if cur is None:
        raise Refused(f"{root}: no active bundle (no 'current' link)")
    found = differences(root / "versions" / cur)
    if found:
        return 1, f"active bundle {cur}: " + "; ".join(found)
    n = len(load_manifest(root / "versions" / cur)["files"])
    return 0, f"active bundle {cur}: all {n} files match the manifest"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="activate.py", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("install", "verify", "rollback", "status"))
    parser.add_argument("--root", required=True, help="the deployment folder")
    parser.add_argument("--bundle", help="install: the copied bundle folder")
    parser.add_argument("--python", default=sys.executable, help="the robot's Python")
    parser.add_argument("--systemd-dir", help="install: also copy the unit here")
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        if args.action == "install":
            if not args.bundle:
                raise Refused("install needs --bundle")
            print(install(root, Path(args.bundle), args.python, args.systemd_dir))
        elif args.action == "rollback":
            print(rollback(root, args.python))
        elif args.action == "status":
            print(f"current {active(root)} previous {active(root, 'previous')}")
        else:
            code, line = verify_active(root)
            print(line)
            return code
    except (Refused, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
