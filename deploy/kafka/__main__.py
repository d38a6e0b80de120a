"""Command line: ``python -m deploy.kafka {up,down,status,kill-broker,start-broker}``.

``up`` prints ``VESSEL_BROKERS=...`` and ``SHORE_BROKERS=...`` on stdout (so
``eval "$(python -m deploy.kafka up --dir DIR)"`` sets both); progress goes to stderr.
Exit codes: 0 done, 1 failed (or, for ``status``, some broker is not up), 2 a required
tool (``java``, ``mvn``) is missing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy.kafka import commands
from deploy.kafka.errors import LauncherError, ToolMissingError
from deploy.kafka.layout import CLUSTER_NAMES, Deployment
from flows.contract import POSITION, TELEMETRY

DEFAULT_DIR = Path("data/kafka")


def _print_brokers(dep: Deployment) -> None:
    print(f"VESSEL_BROKERS={dep.vessel.bootstrap}")
    print(f"SHORE_BROKERS={dep.shore.bootstrap}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deploy.kafka",
        description="Local Kafka clusters on 127.0.0.1: 'vessel' (3 nodes, RF 3, "
        "min ISR 2) and 'shore' (1 node), run from Apache Kafka's own jars.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help=f"deployment directory (default: {DEFAULT_DIR})",
        )
        return sp

    sp = add("up", "start both clusters (or resume stopped ones) and create the topics")
    sp.add_argument(
        "--base-port",
        type=_positive,
        default=None,
        help="first of 8 consecutive ports (default: free ports)",
    )
    sp.add_argument(
        "--telemetry-partitions",
        type=_positive,
        default=6,
        help=f"partitions of {TELEMETRY} (default: 6)",
    )
    sp.add_argument(
        "--position-partitions",
        type=_positive,
        default=3,
        help=f"partitions of {POSITION} (default: 3)",
    )
    sp.add_argument(
        "--timeout",
        type=float,
        default=commands.DEFAULT_UP_TIMEOUT_S,
        help="seconds to wait for the clusters (default: %(default)s)",
    )
    sp = add("down", "stop every broker (SIGTERM, then SIGKILL after --timeout)")
    sp.add_argument(
        "--timeout",
        type=float,
        default=commands.DEFAULT_STOP_TIMEOUT_S,
        help="seconds before SIGKILL (default: %(default)s)",
    )
    add("status", "show each broker: up/starting/down, pid, port")
    for name, what in (
        ("kill-broker", "SIGKILL one broker, as a crash would"),
        ("start-broker", "start one stopped broker again"),
    ):
        sp = add(name, what)
        sp.add_argument("cluster", choices=CLUSTER_NAMES)
        sp.add_argument("node", type=_positive, help="broker number, 1-based")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    home: Path = args.dir
    try:
        if args.command == "up":
            result = commands.up(
                home,
                base_port=args.base_port,
                telemetry_partitions=args.telemetry_partitions,
                position_partitions=args.position_partitions,
                timeout=args.timeout,
            )
            _print_brokers(result.deployment)
        elif args.command == "down":
            stopped = commands.down(home, timeout=args.timeout)
            print(f"stopped {len(stopped)} broker(s)", file=sys.stderr)
        elif args.command == "status":
            rows = commands.status(home)
            for s in rows:
                b = s.broker
                pid = "-" if s.pid is None else str(s.pid)
                print(
                    f"{b.cluster:<6} broker {b.node_id}  {s.state:<8}  pid {pid:<8}  "
                    f"{b.address}  (controller :{b.controller_port})"
                )
            return 0 if all(s.state == "up" for s in rows) else 1
        elif args.command == "kill-broker":
            commands.kill_broker(home, args.cluster, args.node)
        elif args.command == "start-broker":
            commands.start_broker(home, args.cluster, args.node)
    except ToolMissingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except LauncherError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
