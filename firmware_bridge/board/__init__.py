"""The motor board's firmware in C99 (docs/firmware.md), and its host build.

The C sources here (``hal.h``, ``proto.[ch]``, ``board.[ch]``) are what a board port
compiles for its microcontroller; ``sim_hal.c`` is the HAL of the simulated board, and
``host.py`` compiles all of them into a shared library that the fake robot
(``roach sim --board c``) and the tests load with ctypes.
"""
