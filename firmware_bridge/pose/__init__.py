"""Pose sources: the board's serial POSE frames, a UDP pose stream, a motion-capture system
(docs/pose.md). ``source.py`` is the interface and the frame alignment, ``datagram.py``
the UDP format, ``udp.py`` and ``mocap.py`` the two network sources."""
