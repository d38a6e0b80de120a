"""Event time: RFC 3339 timestamps to epoch microseconds (UTC) and back.

`parse_ts` reads the contract's timestamps (a mandatory offset, `T`, `t` or a space
between date and time, `Z` or `z` for UTC, up to 9 fractional digits truncated to
microseconds) and raises `ValueError` with a short phrase saying which rule the text
breaks. `format_ts` writes UTC with `Z`. The contract's bounds on a record's `ts`
are `TS_MIN` and `TS_MAX`. Pure: imports nothing of the project.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

US_PER_S: Final = 1_000_000
#: The earliest `ts` a record may carry, 2000-01-01T00:00:00Z, in epoch microseconds.
TS_MIN: Final = 946_684_800 * US_PER_S
#: The first `ts` a record may no longer carry, 2100-01-01T00:00:00Z.
TS_MAX: Final = 4_102_444_800 * US_PER_S
TS_RANGE: Final = "[2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z)"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# ASCII digits only: `\d` would also take other scripts' digits.
_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_SHAPE: Final = (
    "not RFC 3339 with an offset "
    "(YYYY-MM-DDTHH:MM:SS, up to 9 fractional digits, then Z or +HH:MM or -HH:MM)"
)
_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# Readings of one minute share "YYYY-MM-DDTHH:MM": remembering each minute's epoch
# value turns the common `…:SSZ` form into two dictionary look-ups instead of a parse.
_minutes: dict[str, int] = {}
_MINUTES_MAX: Final = 100_000
_SECONDS: Final = {f":{s:02d}Z": s * US_PER_S for s in range(60)}


def parse_ts(value: str) -> int:
    """Parse an RFC 3339 timestamp with an offset into epoch microseconds.

    Raises:
        ValueError: `value` is not such a timestamp; the message says which rule it
            breaks, without repeating the value.
    """
    base = _minutes.get(value[:16])
    if base is not None:
        seconds = _SECONDS.get(value[16:])
        if seconds is not None:
            return base + seconds
    ts = _parse(value)
    seconds = _SECONDS.get(value[16:])
    if seconds is not None:  # a minute first seen: remember it
        if len(_minutes) >= _MINUTES_MAX:
            _minutes.clear()
        _minutes[value[:16]] = ts - seconds
    return ts


def _parse(value: str) -> int:
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(_SHAPE)
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    if not 1 <= month <= 12:
        raise ValueError(f"not a valid date: month {month} is not in 1..12")
    if not 1 <= day <= _days_in_month(year, month):
        raise ValueError(f"not a valid date: {year:04d}-{month:02d} has no day {day}")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(
            f"not a valid time of day: {hour:02d}:{minute:02d}:{second:02d} "
            "(hours 00-23, minutes and seconds 00-59)"
        )
    offset_s = 0
    if match[8] is not None:
        offset_hours, offset_minutes = int(match[9]), int(match[10])
        if offset_hours > 23 or offset_minutes > 59:
            raise ValueError("not an RFC 3339 time with an offset between -23:59 and +23:59")
        offset_s = (offset_hours * 60 + offset_minutes) * 60
        if match[8] == "-":
            offset_s = -offset_s
    fraction = match[7]
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0  # truncated, not rounded
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return (seconds - offset_s) * US_PER_S + micros


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, any year 0000-9999."""
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


@lru_cache(maxsize=1 << 16)  # window bounds repeat for every container
def format_ts(ts_us: int) -> str:
    """Format epoch microseconds as RFC 3339 UTC with `Z` (years 1000 to 9999)."""
    dt = _EPOCH + timedelta(microseconds=ts_us)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
