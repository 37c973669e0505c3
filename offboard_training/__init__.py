"""Offboard training: simulated data collection, MB and GrBAL dynamics models in PyTorch,
and their export to the ONNX files the robot runs (docs/training.md).

Parts: ``dataset`` (on-disk format), ``collect`` (random actions, or on-policy data
driven by the onboard controller's own adaptation and planner), ``config``, ``model``
(the network and the adaptation step), ``windows``, ``train``, ``evaluate``, ``export``,
``pipeline`` (aggregation, the shipped recipe), ``results``.
Imports firmware_bridge (and the simulator) and onboard; never imported by onboard or
firmware_bridge.
"""
