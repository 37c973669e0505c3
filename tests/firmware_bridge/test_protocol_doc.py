"""docs/protocol.md and the code agree on message types, names and payload sizes."""

from __future__ import annotations

import re
from pathlib import Path

from firmware_bridge.frame import MAX_ENCODED_LEN, MAX_PAYLOAD, PROTOCOL_VERSION
from firmware_bridge.messages import MESSAGE_TYPES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
ROW = re.compile(r"^\| 0x([0-9A-F]{2}) \| ([A-Z_]+) \|(.*)\|$", re.MULTILINE)


def _class_name(doc_name: str) -> str:
    name = "".join(part.title() for part in doc_name.split("_"))
    return {"Telemetry": "TelemetryMsg", "Pose": "PoseMsg"}.get(name, name)


def test_every_message_type_is_documented_with_its_size():
    """Every type is documented under its name, with the codec's reply payload sizes."""
    rows = ROW.findall(DOC)
    documented = {int(t, 16): (name, rest) for t, name, rest in rows}
    assert set(documented) == set(MESSAGE_TYPES)
    for type_id, (name, rest) in documented.items():
        cls = MESSAGE_TYPES[type_id]
        assert cls.__name__ == _class_name(name), (hex(type_id), name)
        if type_id >= 0x80:
            assert int(rest.rsplit("|", 1)[-1]) == cls.STRUCT.size, name


def test_frame_limits_match_the_document():
    """Version, maximum payload and maximum encoded frame are the documented numbers."""
    assert f"**protocol version {PROTOCOL_VERSION}**" in DOC
    assert f"0..{MAX_PAYLOAD} bytes" in DOC
    assert f"maximum encoded frame {MAX_ENCODED_LEN} bytes" in DOC
