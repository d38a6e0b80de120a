"""Query the container-state table from the command line, also while the flow runs.

    python -m state.query DATA_DIR get MSKU1234565 [--pretty]
    python -m state.query DATA_DIR list [--prefix P] [--limit N]
    python -m state.query DATA_DIR count
    python -m state.query DATA_DIR position

Output is JSON on stdout. Exit codes: 0 found, 1 key not found (`get`), 2 any
other error, reported as one line on stderr. All reading goes through
`state.store.TableReader`, which prints nothing, so an HTTP API can reuse it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Final, NoReturn

import orjson

from state.reader import TableReader
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
            f"from DATA_DIR/{TABLE_DIR}/{TABLE_NAME}. Safe while the flow is running: "
            "each command sees the table as of its last complete update."
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
    return parser


def _json_line(value: bytes) -> bytes:
    # Stored values are compact JSON; re-encode only if one somehow spans lines,
    # so `list` output stays one object per line.
    if b"\n" in value:
        value = orjson.dumps(orjson.loads(value))
    return value + b"\n"


def _run(args: argparse.Namespace, out: BinaryIO) -> int:
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
