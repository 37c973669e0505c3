"""The robot's contract, imported by every package and importing none of them.

``state``: the 24-number state layout, the action and its bounds, the control period.
``errors``: the error hierarchy (one-line messages, exit code 2 for user mistakes).
``model_file``: the exported model file (docs/model-format.md): keys, metadata, the graph,
and the strict reader that both the exporter and the robot's loader use.
"""
