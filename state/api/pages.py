"""Pure helpers of the query API: parameter checks, cursor pages, JSON bodies, alerts.

Rows arrive as `(key, JSON bytes)` in key order (keys compare as UTF-8 bytes, as
RocksDB orders them) and leave embedded verbatim in the answer: a page is built
as bytes (`orjson.Fragment`), never decoded and encoded again. No I/O here.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

import orjson

from flows.contract import ALERT_KINDS
from state.api.names import MAX_KEY_BYTES, MAX_LIMIT, OPEN_STATE

Row = tuple[str, bytes]

#: How much of a caller's text an error message repeats.
_ECHO: Final = 60
#: A container-state row without open alerts, as the flow encodes it (compact JSON):
#: such rows are skipped without decoding them.
_NO_OPEN_ALERTS: Final = b'"open_alerts":[]'


@dataclass
class ApiError(Exception):
    """An answer other than 200: its status and one sentence for `{"error": ...}`.

    Attributes:
        status: The HTTP status.
        message: One sentence saying what is wrong and what to do.
        headers: Extra headers (`Retry-After`, `Allow`).
        position: The position the answer reflects, when a store was read.
    """

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    position: int | None = None

    def __str__(self) -> str:
        return self.message


def echo(text: str) -> str:
    """`text` quoted for an error message, cut short: messages stay one short line."""
    return repr(text if len(text) <= _ECHO else text[:_ECHO] + "…")


def check_text(name: str, text: str | None) -> str | None:
    """Return `text` if its UTF-8 is at most MAX_KEY_BYTES long; else ApiError 414."""
    if text is not None and len(text.encode()) > MAX_KEY_BYTES:
        raise ApiError(414, f"{name} is longer than {MAX_KEY_BYTES} bytes; no key is that long")
    return text


def check_limit(limit: int) -> int:
    """Return `limit` if it is in 1..MAX_LIMIT; else ApiError 400 saying the cap."""
    if limit < 1:
        raise ApiError(400, f"limit must be at least 1, got {limit}")
    if limit > MAX_LIMIT:
        raise ApiError(
            400,
            f"limit {limit} is above the cap of {MAX_LIMIT} rows a page; "
            "ask for the next page with after=<the next cursor> instead",
        )
    return limit


def check_alert_filter(state: str, kind: str | None) -> None:
    """ApiError 400 unless `state` is open and `kind` (if given) is an alert kind."""
    if state != OPEN_STATE:
        raise ApiError(
            400, f"state {echo(state)} is not served: the stores keep open alerts only (state=open)"
        )
    if kind is not None and kind not in ALERT_KINDS:
        raise ApiError(
            400, f"kind {echo(kind)} is not an alert kind; the kinds are {', '.join(ALERT_KINDS)}"
        )


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one page, and the cursor of the next page (None: this is the last)."""

    rows: list[Row]
    next: str | None


def take_page(rows: Iterable[Row], limit: int) -> Page:
    """The first `limit` rows; `next` is the last one's key if any row follows it."""
    got = list(itertools.islice(rows, limit + 1))
    if len(got) > limit:
        return Page(got[:limit], got[limit - 1][0])
    return Page(got, None)


def after_key(rows: Iterable[Row], after: str | None) -> Iterator[Row]:
    """The rows whose key is above `after` (all when None), for rows already in memory."""
    if after is None:
        return iter(rows)
    cut = after.encode()
    return (row for row in rows if row[0].encode() > cut)


def merge_unique(*sources: Iterable[Row]) -> Iterator[Row]:
    """Merge key-ordered sources into one; of equal keys, the first source's row wins."""
    # heapq.merge is stable: equal keys come in source order.
    merged = heapq.merge(*sources, key=lambda row: row[0].encode())
    for _, same in itertools.groupby(merged, key=itemgetter(0)):
        yield next(same)


def rows_body(table: str, page: Page) -> bytes:
    """`{"table": ..., "rows": [{"key": ..., "value": <row>}, ...], "next": ...}`."""
    rows = [{"key": key, "value": orjson.Fragment(value)} for key, value in page.rows]
    return orjson.dumps({"table": table, "rows": rows, "next": page.next})


def values_body(name: str, page: Page) -> bytes:
    """`{name: [<row>, ...], "next": ...}`, for rows that carry their own key."""
    return orjson.dumps(
        {name: [orjson.Fragment(value) for _, value in page.rows], "next": page.next}
    )


def json_body(value: Any) -> bytes:
    return orjson.dumps(value)


def vessel_alerts(rows: Iterable[Row]) -> list[Row]:
    """`(alert_id, JSON)` of every open alert that container-state rows name, by alert id.

    Each is `{"alert_id", "kind", "vessel_id", "container_id"}`: the fields of the
    fleet's `open-alerts` rows that a container-state row holds (`open_alerts`,
    `alert_ids`: kind -> alert id).

    Raises:
        orjson.JSONDecodeError: A row is not JSON.
    """
    out: list[Row] = []
    for key, raw in rows:
        if _NO_OPEN_ALERTS in raw:
            continue
        row = orjson.loads(raw)
        ids = row.get("alert_ids") or {}
        for kind in row.get("open_alerts") or ():
            alert_id = ids.get(kind)
            if not isinstance(alert_id, str):
                continue  # the contract pairs every open kind with its id
            alert = {"alert_id": alert_id, "kind": kind, "vessel_id": row.get("vessel_id")}
            alert["container_id"] = row.get("container_id", key)
            out.append((alert_id, orjson.dumps(alert)))
    out.sort(key=lambda row: row[0].encode())
    return out


def alert_filter(rows: Iterable[Row], vessel: str | None, kind: str | None) -> Iterator[Row]:
    """The alert rows of `vessel` and of `kind` (either None: any).

    Raises:
        orjson.JSONDecodeError: A row is not JSON (decoded only when filtering).
    """
    if vessel is None and kind is None:
        yield from rows
        return
    for alert_id, raw in rows:
        alert: Mapping[str, Any] = orjson.loads(raw)
        if (vessel is None or alert.get("vessel_id") == vessel) and (
            kind is None or alert.get("kind") == kind
        ):
            yield alert_id, raw
