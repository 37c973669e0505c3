"""Errors of the offboard training pipeline (each a one-line ``RoachError``)."""

from __future__ import annotations

from robot_contract.errors import RoachError


class DatasetError(RoachError):
    """A training dataset that is missing, malformed or inconsistent."""
