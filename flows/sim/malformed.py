"""Malformed lines: one variant per way a gateway line can break, built from a valid record.

Each variant must end up in the dead-letter output with its own reason, so the
emitter cycles through them in order.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from flows.contract import POSITION, TELEMETRY

MALFORMED_KINDS: Final = (
    "not JSON",
    "JSON array",
    "unknown type",
    "missing required field",
    "boolean for a number",
    "non-finite number 1e999",
    "ts without offset",
    "bad check digit",
    "latitude 95",
    "invalid UTF-8",
    "number as a string",
)

# Stand-ins when a malformed line is due before any real record of that type.
_TELEMETRY_TEMPLATE: Final[dict[str, Any]] = {
    "type": TELEMETRY, "container_id": "MSKU1234565", "vessel_id": "IMO9778791",
    "ts": "2026-11-20T00:00:00Z", "setpoint_c": -18.0, "temp_c": -18.3, "power_kw": 2.7,
}  # fmt: skip


def malformed_line(variant: int, telemetry: bytes | None, position: bytes) -> tuple[bytes, str]:
    """The malformed line of one variant, built from a recent valid record, and its topic."""
    tel: dict[str, Any] = orjson.loads(telemetry) if telemetry else dict(_TELEMETRY_TEMPLATE)
    kind = MALFORMED_KINDS[variant]
    if kind == "latitude 95":
        return orjson.dumps({**orjson.loads(position), "lat": 95.0}), POSITION
    if kind == "not JSON":
        line = orjson.dumps(tel)
        return line[: len(line) // 2], TELEMETRY  # cut off mid-record, as by a dropped link
    if kind == "JSON array":
        return b"[" + orjson.dumps(tel) + b"]", TELEMETRY
    if kind == "unknown type":
        return orjson.dumps({**tel, "type": "reefer.diagnostics"}), TELEMETRY
    if kind == "missing required field":
        return orjson.dumps({k: v for k, v in tel.items() if k != "power_kw"}), TELEMETRY
    if kind == "boolean for a number":
        return orjson.dumps({**tel, "temp_c": True}), TELEMETRY
    if kind == "non-finite number 1e999":
        # orjson cannot write an infinity, so splice the literal into the text.
        line = orjson.dumps({**tel, "temp_c": "@@inf@@"})
        return line.replace(b'"@@inf@@"', b"1e999"), TELEMETRY
    if kind == "ts without offset":
        return orjson.dumps({**tel, "ts": tel["ts"].rstrip("Z")}), TELEMETRY
    if kind == "bad check digit":
        cid = tel["container_id"]
        return orjson.dumps(
            {**tel, "container_id": f"{cid[:10]}{(int(cid[10]) + 1) % 10}"}
        ), TELEMETRY
    if kind == "invalid UTF-8":
        line = orjson.dumps(tel)
        cid = tel["container_id"].encode()
        return line.replace(cid, b"\xff\xfe" + cid[2:]), TELEMETRY
    if kind == "number as a string":
        return orjson.dumps({**tel, "temp_c": str(tel["temp_c"])}), TELEMETRY
    raise AssertionError(kind)
