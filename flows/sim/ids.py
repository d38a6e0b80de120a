"""How records name things: RFC 3339 timestamps, IMO ship numbers, ISO 6346 container ids."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

from flows.events import with_check_digit
from flows.sim.config import MINUTE


@lru_cache(maxsize=8192)
def _minute_prefix(minute: int) -> str:
    return datetime.fromtimestamp(minute * MINUTE, UTC).strftime("%Y-%m-%dT%H:%M:")


def fmt_ts(t: int) -> str:
    """Epoch seconds as RFC 3339 UTC; a cached minute prefix spares a strftime per record."""
    minute, second = divmod(t, MINUTE)
    return f"{_minute_prefix(minute)}{second:02d}Z"


def imo_check_digit(first_six: str) -> int:
    """Check digit of an IMO ship number: the six digits weighted 7..2, sum mod 10."""
    return sum(int(d) * w for d, w in zip(first_six, range(7, 1, -1), strict=True)) % 10


def make_imo(rng: random.Random, used: set[str]) -> str:
    """A new IMO number (`IMO` + 7 digits), not in `used`; adds it there."""
    while True:
        # Ships built since the 1990s carry numbers starting with 9.
        digits = "9" + "".join(str(rng.randrange(10)) for _ in range(5))
        imo = f"IMO{digits}{imo_check_digit(digits)}"
        if imo not in used:
            used.add(imo)
            return imo


# Real owner codes of reefer fleets; all in category U (freight container).
_OWNER_CODES: Final = (
    "MSKU", "MNBU", "MAEU", "CMAU", "CGMU", "HLXU", "SZLU", "TRIU",
    "OOLU", "SEGU", "TTNU", "CAIU", "CXRU", "MWCU", "ONEU", "TEMU",
)  # fmt: skip


def make_container_id(rng: random.Random, used: set[str]) -> str:
    """A new container id with a valid ISO 6346 check digit, not in `used`; adds it there."""
    while True:
        cid = with_check_digit(f"{rng.choice(_OWNER_CODES)}{rng.randrange(1_000_000):06d}")
        if cid not in used:
            used.add(cid)
            return cid
