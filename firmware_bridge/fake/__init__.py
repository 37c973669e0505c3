"""The software fake of the motor board behind a pseudo-terminal (``roach sim``)."""
