"""Benchmarks of the onboard controller (``roach bench onboard``): numbers only, nothing
is asserted.

- ``step_times.py``: adaptation and planning step times and the prediction's GFLOP/s
  against a plain matmul, from random weights of a given size;
- ``planner_compare.py``: planner settings compared by control quality per compute, with
  the model as the world or with ``roach sim`` + ``roach run``.

Each yields typed rows and provides the lines to print them; the command prints.
"""
