"""The input contract's field rules the typed decoder cannot state, with their reasons.

Each check returns (or raises) the dead-letter sentence for a bad value: the field,
the value (quoted and cut short) and the rule. Ids repeat on every reading, so the
ids found valid are remembered in `VALID_CONTAINER_IDS` and `VALID_VESSEL_IDS`,
which the hot path in `flows.events` looks in before it calls a check. Pure:
imports only `flows.timestamps`.
"""

from __future__ import annotations

import re
from typing import Final

from flows.timestamps import TS_MAX, TS_MIN, TS_RANGE, parse_ts

#: Longest excerpt of a value a reason shows.
SHOWN_CHARS: Final = 64

_CONTAINER_ID: Final = re.compile(r"[A-Z]{3}[UJZ][0-9]{7}")
_VESSEL_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: Container ids found valid so far (valid ids are short; a cap bounds a hostile stream).
VALID_CONTAINER_IDS: Final[set[str]] = set()
#: Vessel ids found valid so far.
VALID_VESSEL_IDS: Final[set[str]] = set()
_VALID_MAX: Final = 1_000_000

# ISO 6346 letter values: A=10 upwards, skipping multiples of 11.
_LETTER_VALUES: Final[dict[str, int]] = {}
_value = 10
for _letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    if _value % 11 == 0:
        _value += 1
    _LETTER_VALUES[_letter] = _value
    _value += 1


def quote(value: str) -> str:
    """A string value as a reason shows it: quoted, escaped, cut to `SHOWN_CHARS`."""
    return repr(value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…")


def iso6346_check_digit(owner_serial: str) -> int:
    """Check digit of the first ten characters of an ISO 6346 container number."""
    total = 0
    for i, ch in enumerate(owner_serial):
        value = _LETTER_VALUES[ch] if ch.isalpha() else int(ch)
        total += value << i
    return total % 11 % 10


def with_check_digit(owner_serial: str) -> str:
    """A full ISO 6346 container number: the ten characters and their check digit."""
    return f"{owner_serial}{iso6346_check_digit(owner_serial)}"


def container_id_error(value: str) -> str | None:
    """None for a valid ISO 6346 container number, else the reason."""
    if value in VALID_CONTAINER_IDS:
        return None
    if not _CONTAINER_ID.fullmatch(value):
        return (
            f"container_id: {quote(value)} is not an ISO 6346 number "
            "(3 letters, category U, J or Z, 6 digits, check digit)"
        )
    expected = iso6346_check_digit(value[:10])
    if expected != int(value[10]):
        return f"container_id: bad check digit: {quote(value)} should end in {expected}"
    if len(VALID_CONTAINER_IDS) < _VALID_MAX:
        VALID_CONTAINER_IDS.add(value)
    return None


def vessel_id_error(value: str) -> str | None:
    """None for a valid vessel id, else the reason."""
    if value in VALID_VESSEL_IDS:
        return None
    if not _VESSEL_ID.fullmatch(value):
        return f"vessel_id: {quote(value)} is not 1-64 of A-Z a-z 0-9 . _ -"
    if len(VALID_VESSEL_IDS) < _VALID_MAX:
        VALID_VESSEL_IDS.add(value)
    return None


def event_time(text: str) -> int:
    """A record's `ts` in epoch microseconds, checked against the contract's bounds.

    Raises:
        ValueError: with the reason as its message.
    """
    try:
        ts = parse_ts(text)
    except ValueError as exc:
        raise ValueError(f"ts: {quote(text)} is {exc}") from None
    if not TS_MIN <= ts < TS_MAX:
        raise ValueError(f"ts: {quote(text)} is outside {TS_RANGE}")
    return ts
