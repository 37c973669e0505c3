"""The project's error hierarchy, shared by every package (the bottom of the import order).

Every user-facing failure is a ``RoachError`` subclass whose message is one line that
says what was wrong, where, and what would be valid. The ``roach`` command line turns
these into ``roach <command>: error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations


class RoachError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 2


class ConfigError(RoachError):
    """A bad configuration value, condition string, TOML file or command-line option."""


class ModelFileError(RoachError):
    """A model file that is missing, not ONNX, truncated, or inconsistent with the config."""


class LinkError(RoachError):
    """A serial link that cannot be opened, or was lost and not recovered."""


class ProtocolError(RoachError):
    """A message that cannot be encoded or decoded (bad length, field out of range)."""
