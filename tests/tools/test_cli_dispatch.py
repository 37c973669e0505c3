"""The `roach` entry point: help, unknown commands, and subcommand dispatch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_subcommand(capsys):
    """`roach --help` exits 0 and names every registered subcommand."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_unknown_command_is_one_line_error_exit_2(capsys):
    """An unknown subcommand gives exit code 2 and an error line naming it and the valid ones."""
    assert main(["fly"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("roach: error:")]
    assert len(lines) == 1 and "'fly'" in lines[0] and "run" in lines[0]


def test_every_registered_module_exists():
    """Each registered subcommand has a module with HELP, add_arguments and run."""
    for name, (module, _help) in SUBCOMMANDS.items():
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.exists(), f"{name}: {path} missing"
        text = path.read_text()
        assert "def add_arguments" in text and "def run" in text, name


def test_console_script_installed():
    """The `roach` console script is installed next to the interpreter and runs."""
    exe = Path(sys.executable).parent / "roach"
    assert exe.exists()
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "COMMAND" in proc.stdout
