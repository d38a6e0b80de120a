"""Command line: ``python -m deploy.kafka {up,down,status,kill-broker,start-broker,link,mirror}``.

``up`` prints ``VESSEL_BROKERS=...`` and ``SHORE_BROKERS=...`` on stdout (so
``eval "$(python -m deploy.kafka up --dir DIR)"`` sets both); with ``--vessels N`` also
``VESSEL_BROKERS_<ID>=...`` per vessel (``VESSEL_BROKERS`` is then the first vessel's).
Progress goes to stderr. Exit codes: 0 done, 1 failed (or, for ``status``, some process
is not up; for ``mirror status``, a MirrorMaker or its task is down or records were
lost), 2 a required tool (``java``, ``mvn``, ``go``) is missing.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy.kafka import commands, mirroring
from deploy.kafka.errors import LauncherError, ToolMissingError
from deploy.kafka.layout import DEFAULT_VESSEL_NODES, Deployment
from deploy.kafka.link import LINK_MODES, LinkMode
from deploy.kafka.processes import running_pid
from flows.contract import POSITION, TELEMETRY

DEFAULT_DIR = Path("data/kafka")


def _print_brokers(dep: Deployment) -> None:
    print(f"VESSEL_BROKERS={dep.vessel.bootstrap}")
    if dep.mirrors:
        for v in dep.vessels:
            print(f"VESSEL_BROKERS_{re.sub(r'[^A-Z0-9]', '_', v.name.upper())}={v.bootstrap}")
    print(f"SHORE_BROKERS={dep.shore.bootstrap}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _vessels(text: str) -> int | list[str]:
    """A number of vessels (named vessel1..vesselN), or their names, comma-separated."""
    if text.isdigit():
        return _positive(text)
    names = text.split(",")
    if not all(re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in names) or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a number nor distinct vessel names (letters, digits, - and "
            "_; no dots: a name is the mirror prefix of its topics), e.g. IMO9536583,IMO9997658"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deploy.kafka",
        description="Local Kafka clusters on 127.0.0.1: 'vessel' (3 nodes, RF 3, min ISR 2) "
        "and 'shore' (1 node), run from Apache Kafka's own jars; with --vessels N, N vessels "
        "mirrored ashore by MirrorMaker 2 across a link proxy (Toxiproxy).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(
        parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
    ) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help_text, description=help_text)
        sp.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help=f"deployment directory (default: {DEFAULT_DIR})",
        )
        return sp

    sp = add(sub, "up", "start the clusters (or resume stopped ones) and create the topics")
    sp.add_argument(
        "--base-port",
        type=_positive,
        default=None,
        help="first of the consecutive ports to use (8 without --vessels; default: free ports)",
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
        "--vessels",
        type=_vessels,
        default=None,
        help="N vessel clusters vessel1..vessel<N>, or named ones (e.g. the vessel ids "
        "IMO9536583,IMO9997658, so that topics ashore are prefixed with them), each "
        "mirrored ashore by its own MirrorMaker 2 across a link proxy (default: one "
        "unmirrored 'vessel' cluster)",
    )
    sp.add_argument(
        "--vessel-nodes",
        type=_positive,
        default=DEFAULT_VESSEL_NODES,
        help="nodes per vessel cluster (default: %(default)s)",
    )
    sp.add_argument(
        "--mirror-raw",
        action="store_true",
        help=f"also mirror raw {TELEMETRY} (the link is narrow: off by default)",
    )
    sp.add_argument(
        "--timeout",
        type=float,
        default=commands.DEFAULT_UP_TIMEOUT_S,
        help="seconds to wait for the clusters (default: %(default)s)",
    )
    sp = add(sub, "down", "stop every process (SIGTERM, then SIGKILL after --timeout)")
    sp.add_argument(
        "--timeout",
        type=float,
        default=commands.DEFAULT_STOP_TIMEOUT_S,
        help="seconds before SIGKILL (default: %(default)s)",
    )
    add(sub, "status", "show each broker (and link proxy, MirrorMaker): up/starting/down, pid")
    for name, what in (
        ("kill-broker", "SIGKILL one broker, as a crash would"),
        ("start-broker", "start one stopped broker again"),
    ):
        sp = add(sub, name, what)
        sp.add_argument("cluster", help="vessel, shore or a vessel id")
        sp.add_argument("node", type=_positive, help="broker number, 1-based")
    sp = add(sub, "link", "set a vessel's link: up, down (refused), blackhole, satellite")
    sp.add_argument("mode", choices=LINK_MODES)
    sp.add_argument("vessel", help="vessel id, e.g. vessel1")
    mp = sub.add_parser("mirror", help="MirrorMaker 2: status, stop, start, kill")
    msub = mp.add_subparsers(dest="action", required=True)
    add(msub, "status", "per vessel and topic: records waiting to cross, and any gap")
    for name, what in (
        ("stop", "stop a vessel's MirrorMaker (SIGTERM)"),
        ("start", "start a vessel's MirrorMaker again"),
        ("kill", "SIGKILL a vessel's MirrorMaker, as a crash would"),
    ):
        sp = add(msub, name, what)
        sp.add_argument("vessel", help="vessel id, e.g. vessel1")
    return p


def _status(home: Path) -> int:
    rows = commands.status(home)
    for s in rows:
        b = s.broker
        pid = "-" if s.pid is None else str(s.pid)
        print(
            f"{b.cluster:<6} broker {b.node_id}  {s.state:<8}  pid {pid:<8}  "
            f"{b.address}  (controller :{b.controller_port})"
        )
    ok = all(s.state == "up" for s in rows)
    dep = Deployment.load(home.resolve())
    for d in mirroring.shipping_daemons(dep):
        live = running_pid(d)
        ok = ok and live is not None
        state = "down" if live is None else "up"
        print(f"{d.name:<15}  {state:<8}  pid {live or '-':<8}  {d.marker.parent}")
    return 0 if ok else 1


def _mirror(args: argparse.Namespace) -> int:
    home: Path = args.dir
    if args.action == "status":
        statuses = mirroring.mirror_status(home)
        for s in statuses:
            print("\n".join(s.lines()))
        return 0 if all(s.healthy for s in statuses) else 1
    if args.action == "stop":
        mirroring.stop_mirror(home, args.vessel)
    elif args.action == "kill":
        mirroring.kill_mirror(home, args.vessel)
    elif args.action == "start":
        mirroring.start_mirror(home, args.vessel)
    return 0


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
                vessels=args.vessels,
                vessel_nodes=args.vessel_nodes,
                mirror_raw=args.mirror_raw,
            )
            _print_brokers(result.deployment)
        elif args.command == "down":
            stopped = commands.down(home, timeout=args.timeout)
            print(f"stopped {len(stopped)} process(es)", file=sys.stderr)
        elif args.command == "status":
            return _status(home)
        elif args.command == "kill-broker":
            commands.kill_broker(home, args.cluster, args.node)
        elif args.command == "start-broker":
            commands.start_broker(home, args.cluster, args.node)
        elif args.command == "link":
            mode: LinkMode = args.mode
            mirroring.set_link_mode(home, args.vessel, mode)
        elif args.command == "mirror":
            return _mirror(args)
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
