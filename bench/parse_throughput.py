"""Throughput of input parsing (`flows.events.parse`) on simulated lines, next to its baselines.

    python -m bench.parse_throughput [--containers 2000] [--hours 12] [--rounds 5]
                                     [--baseline OLD_EVENTS_PY]

Prints records/s of `orjson.loads` alone, `msgspec.json.decode` to a dict, and
`parse`, on the simulator's valid readings, on its position fixes and on its
malformed lines (the dead-letter path). `--baseline` also times the `parse` of
another copy of `flows/events.py` (for instance `git show HEAD~1:flows/events.py`
saved to a file). Each figure is the best of `--rounds` rounds, the parsers taking
turns within a round, so that a shared machine's changing load hits them alike.
Figures, never asserts.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

from flows.events import DeadLetter, Position, Telemetry, parse
from flows.sim import SimConfig, generate

Parser = Callable[[bytes], object]


def _load_parse(path: Path) -> Parser:
    """`parse` of a stand-alone copy of an events module."""
    spec = importlib.util.spec_from_file_location("baseline_events", path)
    if spec is None or spec.loader is None:
        sys.exit(f"--baseline: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    baseline = module.parse
    return lambda raw: baseline(raw, "bench:")


def _rate(parser: Parser, lines: list[bytes]) -> float:
    gc.collect()
    started = time.perf_counter()
    for raw in lines:
        parser(raw)
    return len(lines) / (time.perf_counter() - started)


def _safe(decode: Parser) -> Parser:
    """A bare decoder that survives malformed lines, like a parser must."""

    def run(raw: bytes) -> object:
        try:
            return decode(raw)
        except (ValueError, msgspec.MsgspecError):  # orjson's error is a ValueError
            return None

    return run


def main() -> None:
    """Time every parser on every kind of line and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=2000)
    ap.add_argument("--hours", type=float, default=12)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="another events.py whose parse to time too")
    args = ap.parse_args()

    lines = list(generate(SimConfig(containers=args.containers, hours=args.hours)))
    kinds: dict[str, list[bytes]] = {"readings": [], "positions": [], "malformed": []}
    kind_of = {Telemetry: "readings", Position: "positions", DeadLetter: "malformed"}
    for raw in lines:
        kinds[kind_of[type(parse(raw, "bench:"))]].append(raw)

    parsers: dict[str, Parser] = {
        "orjson.loads": _safe(orjson.loads),
        "msgspec.json.decode (dict)": _safe(msgspec.json.Decoder().decode),
        "flows.events.parse": lambda raw: parse(raw, "bench:"),
    }
    if args.baseline is not None:
        parsers[f"baseline parse ({args.baseline})"] = _load_parse(args.baseline)

    best = {(p, k): 0.0 for p in parsers for k in kinds}
    for _ in range(args.rounds):
        for kind, sample in kinds.items():
            for name, parser in parsers.items():
                if sample:
                    best[name, kind] = max(best[name, kind], _rate(parser, sample))

    counts = ", ".join(f"{len(v):,} {k}" for k, v in kinds.items())
    print(f"{len(lines):,} simulated lines ({counts}); records/s, best of {args.rounds}")
    width = max(len(name) for name in parsers)
    print(f"{'':{width}}  " + "".join(f"{kind:>12}" for kind in kinds))
    for name in parsers:
        figures = "".join(f"{best[name, kind]:>12,.0f}" for kind in kinds)
        print(f"{name:{width}}  {figures}")


if __name__ == "__main__":
    main()
