"""CLI: `python -m flows.sim --out DIR [--seed N ...] [--kafka BROKERS [--rate N]]`.

Writes `DIR/records.jsonl` and `DIR/labels.jsonl`, optionally produces the
records to Kafka, and prints a one-line summary to stderr. One option per
`SimConfig` field, so the CLI follows the config.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flows.contract import POSITION, TELEMETRY
from flows.sim.config import SimConfig
from flows.sim.emit import write_run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.sim",
        description="Write a simulated reefer fleet (records.jsonl) and its ground truth "
        "(labels.jsonl).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    # One option per SimConfig field, so the CLI follows the config.
    for name, default in SimConfig.defaults().items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(default),
            default=default,
            help=f"default {default}",
        )
    parser.add_argument(
        "--kafka",
        metavar="BROKERS",
        help="also produce every record to these bootstrap servers "
        f"({TELEMETRY} keyed by container, {POSITION} by vessel)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="records per second to produce with --kafka (default 0: as fast as possible)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; prints a one-line summary to stderr."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cfg = SimConfig(**{name: getattr(args, name) for name in SimConfig.defaults()})
    except ValueError as exc:
        parser.error(str(exc))
    began = time.perf_counter()  # for the summary only; the output never sees the clock
    records_path, labels_path, stats = write_run(cfg, args.out)
    seconds = time.perf_counter() - began
    if args.kafka:
        # Lazily: the simulator itself never needs a Kafka client.
        from flows.edges.kafka.producer import produce_file

        sent, took = produce_file(records_path, args.kafka, rate=args.rate)
        print(
            f"simulator: produced {sent:,} records to {args.kafka} in {took:.1f} s "
            f"({sent / max(took, 1e-9):,.0f}/s)",
            file=sys.stderr,
        )
    print(
        f"simulator: {stats.records} records ({stats.readings} readings, "
        f"{stats.positions} positions, {stats.malformed} malformed), {stats.labels} labels "
        f"in {seconds:.2f} s -> {records_path}, {labels_path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
