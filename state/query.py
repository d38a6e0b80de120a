"""Query the local tables from the command line, also while the flows run.

    python -m state.query DATA_DIR get MSKU1234565 [--pretty]
    python -m state.query DATA_DIR list [--prefix P] [--limit N]
    python -m state.query DATA_DIR count
    python -m state.query DATA_DIR position
    python -m state.query DATA_DIR tables
    python -m state.query DATA_DIR dump TABLE

`get`, `list`, `count` and `position` read a vessel's container-state table.
`tables` prints `{"table": name, "rows": n}` for every table in DATA_DIR (a
vessel's container-state table, the fleet's six tables, or both), `dump` every
row of one table as `{"key": key, "value": row}`, in key order. In a data dir
holding both, `dump container-state` reads the fleet's table.

Output is JSON on stdout. Exit codes: 0 found, 1 key not found (`get`), 2 any
other error, reported as one line on stderr. All reading goes through
`state.reader.TableReader` and `state.fleet_reader.FleetReader`, which print
nothing, so an HTTP API can reuse them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final, NoReturn

import orjson

from flows.fleet_core.names import TABLE_NAMES
from state.fleet_layout import fleet_dir
from state.fleet_reader import FleetReader
from state.reader import TableReader, database_identity
from state.table import TABLE_DIR, TABLE_NAME, StoreError, table_path

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
EXIT_ERROR: Final = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: {message} (see --help)\n")


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m state.query",
        description=(
            "Read the container-state table (the latest state of every container) "
            f"from DATA_DIR/{TABLE_DIR}/{TABLE_NAME}, or list and dump the fleet's tables. "
            "Safe while the flow is running: each command sees a table as of its last "
            "complete update."
        ),
        epilog="Exit codes: 0 ok, 1 key not found (get), 2 error (one line on stderr).",
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="the flow's data dir")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    get = commands.add_parser(
        "get",
        help="print one container's state as JSON",
        description="Print the state of one container as JSON (exit 1 if the table lacks it).",
    )
    get.add_argument("key", metavar="CONTAINER_ID", help="e.g. MSKU1234565")
    get.add_argument("--pretty", action="store_true", help="indent the JSON")

    lst = commands.add_parser(
        "list",
        help="print container states, one JSON object per line",
        description="Print container states in key order, one JSON object per line.",
    )
    lst.add_argument("--prefix", default="", help="only container ids starting with this")
    lst.add_argument("--limit", type=_limit, default=None, metavar="N", help="at most N rows")

    commands.add_parser(
        "count", help="print the number of containers", description="Print the number of rows."
    )
    commands.add_parser(
        "position",
        help="print the input position the table reflects",
        description=(
            "Print the count of input records the table reflects (null if nothing was written yet)."
        ),
    )
    commands.add_parser(
        "tables",
        help="print every table and its row count",
        description=(
            'Print {"table": NAME, "rows": N} for every table in DATA_DIR: a vessel\'s '
            f"{TABLE_NAME} table and the fleet's {len(TABLE_NAMES)} tables."
        ),
    )
    dump = commands.add_parser(
        "dump",
        help="print every row of a table, one JSON object per line",
        description='Print {"key": KEY, "value": ROW} for every row of TABLE, in key order.',
    )
    dump.add_argument("table", metavar="TABLE", help=f"e.g. {', '.join(TABLE_NAMES)}")
    return parser


def _one_line(value: bytes) -> bytes:
    # Stored values are compact JSON; re-encode only if one somehow spans lines,
    # so `list` and `dump` output stays one object per line.
    if b"\n" in value:
        value = orjson.dumps(orjson.loads(value))
    return value


def _json_line(value: bytes) -> bytes:
    return _one_line(value) + b"\n"


def _has_vessel_table(data_dir: Path) -> bool:
    return database_identity(table_path(data_dir)) is not None


def _has_fleet_tables(data_dir: Path) -> bool:
    return fleet_dir(data_dir).is_dir()


def _no_tables(data_dir: Path) -> StoreError:
    return StoreError(
        f"no tables in {data_dir}: neither a {TABLE_NAME} table ({table_path(data_dir)}) nor "
        f"fleet tables ({fleet_dir(data_dir)}); run the flow first"
    )


def _tables(data_dir: Path, out: BinaryIO) -> int:
    counts: list[tuple[str, int]] = []
    if _has_vessel_table(data_dir):
        with TableReader(table_path(data_dir)) as reader:
            counts.append((TABLE_NAME, reader.count()))
    if _has_fleet_tables(data_dir):
        with FleetReader(data_dir) as fleet:
            counts.extend(fleet.tables().items())
    if not counts:
        raise _no_tables(data_dir)
    for name, rows in counts:
        out.write(orjson.dumps({"table": name, "rows": rows}) + b"\n")
    return EXIT_OK


def _dump(data_dir: Path, table: str, out: BinaryIO) -> int:
    fleet = _has_fleet_tables(data_dir)
    if fleet and table in TABLE_NAMES:
        with FleetReader(data_dir) as reader:
            _write_rows(reader.rows(table), out)
    elif table == TABLE_NAME and _has_vessel_table(data_dir):
        with TableReader(table_path(data_dir)) as vessel:
            _write_rows(vessel.items(), out)
    else:
        names = [TABLE_NAME] if _has_vessel_table(data_dir) else []
        # dict.fromkeys: the vessel's and the fleet's container-state share a name.
        names = list(dict.fromkeys(names + (list(TABLE_NAMES) if fleet else [])))
        if not names:
            raise _no_tables(data_dir)
        raise StoreError(f"no table {table!r} in {data_dir}; its tables are {', '.join(names)}")
    return EXIT_OK


def _write_rows(rows: Iterator[tuple[str, bytes]], out: BinaryIO) -> None:
    for key, value in rows:
        # Built as bytes, the stored JSON verbatim: the output is byte-stable.
        out.write(b'{"key":' + orjson.dumps(key) + b',"value":' + _one_line(value) + b"}\n")


def _run(args: argparse.Namespace, out: BinaryIO) -> int:
    if args.command == "tables":
        return _tables(args.data_dir, out)
    if args.command == "dump":
        return _dump(args.data_dir, args.table, out)
    with TableReader(table_path(args.data_dir)) as reader:
        if args.command == "get":
            value = reader.get(args.key)
            if value is None:
                print(f"no container {args.key!r} in the table at {reader.path}", file=sys.stderr)
                return EXIT_NOT_FOUND
            if args.pretty:
                out.write(orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2) + b"\n")
            else:
                out.write(_json_line(value))
        elif args.command == "list":
            for _, value in reader.items(prefix=args.prefix, limit=args.limit):
                out.write(_json_line(value))
        elif args.command == "count":
            out.write(orjson.dumps(reader.count()) + b"\n")
        else:
            out.write(orjson.dumps(reader.position()) + b"\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        code = _run(args, sys.stdout.buffer)
        sys.stdout.flush()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except orjson.JSONDecodeError as exc:
        print(f"error: a stored value is not JSON ({exc})", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader of our output went away (`| head`): not an error. Point
        # stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
