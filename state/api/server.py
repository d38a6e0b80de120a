"""`python -m state.api --data DIR [--host H] [--port P] [--tls-cert F --tls-key F]`.

Checks everything before it binds, and says what is wrong in one line on stderr
with exit code 2 (as `flows.vessel` and `state.query` do): bad arguments, an unknown
`COLDWAKE_*` variable, no tables in DIR, a host other than loopback without
`COLDWAKE_API_TOKEN`, TLS files that do not load, a port that cannot be bound.
Then it binds the socket itself (so `--port 0` picks a free port, and the start
line names it) and serves the app on uvicorn until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

from deploy.kafka.errors import StateMissingError
from flows.config import ConfigError, check_names, threshold_var, value
from state.api.link import MirrorWatch
from state.api.names import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_REQUEST_HEAD,
    MIN_TOKEN_CHARS,
    TOKEN_VAR,
)
from state.api.stores import Stores
from state.table import StoreError

__all__ = ["main"]

EXIT_ERROR: Final = 2
#: Seconds a shutdown waits for requests in flight (a `min_position` wait is up to 10 s).
_GRACE_S: Final = 2


class StartError(Exception):
    """The server cannot start; the message is the one line that says why."""


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"coldwake: {message} (see python -m state.api --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m state.api",
        description=(
            "Serve the tables of a Coldwake data dir over HTTP (read-only JSON): a vessel's "
            "container-state table, the fleet's tables, or both. See docs/api.md."
        ),
        epilog=(
            f"Any host but loopback requires {TOKEN_VAR} (clients send "
            "'Authorization: Bearer <token>'). Exit code 2: cannot start (one line on stderr)."
        ),
    )
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="the data dir")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind ({DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port ({DEFAULT_PORT}; 0: any free)"
    )
    parser.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve HTTPS: certificate")
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="serve HTTPS: private key")
    parser.add_argument(
        "--mirror-dir",
        type=Path,
        metavar="DIR",
        help="a `python -m deploy.kafka up --vessels …` dir: the vessel pages show the "
        "records waiting to cross each link (its `mirror status`)",
    )
    return parser


def _token() -> str | None:
    check_names(os.environ)
    token = str(value(os.environ, TOKEN_VAR))
    if not token:
        return None
    if len(token) < MIN_TOKEN_CHARS:
        raise StartError(
            f"{TOKEN_VAR} is shorter than {MIN_TOKEN_CHARS} characters; use a long random "
            "string, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


@dataclass(frozen=True, slots=True)
class _Address:
    family: socket.AddressFamily
    proto: int
    host: str
    port: int
    loopback: bool


def _address(host: str, port: int) -> _Address:
    """Where `host` and `port` would be bound."""
    if not 0 <= port <= 65535:
        raise StartError(f"--port {port} is not a TCP port (0 to 65535)")
    try:
        family, _, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise StartError(f"--host {host!r} is not an address this machine knows: {exc}") from None
    ip = ipaddress.ip_address(str(address[0]))
    return _Address(family, proto, str(address[0]), int(address[1]), ip.is_loopback)


def _check_tls(cert: Path | None, key: Path | None) -> None:
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise StartError("--tls-cert and --tls-key go together: give both to serve HTTPS")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise StartError(
            f"cannot load the TLS certificate {cert} with key {key}: {exc}; "
            "give a readable PEM certificate and its private key"
        ) from None


def _bind(address: _Address) -> socket.socket:
    # The protocol from getaddrinfo (IPPROTO_TCP), not 0: asyncio sets TCP_NODELAY only
    # on sockets that say they are TCP, and without it every answer waits ~40 ms for
    # the client's delayed ACK (headers and body go out as two writes).
    sock = socket.socket(address.family, socket.SOCK_STREAM, address.proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise StartError(
            f"cannot listen on {address.host} port {address.port}: {exc.strerror}"
        ) from None
    return sock


def _describe(stores: Stores, sock: socket.socket, tls: bool, token: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if tls else 'http'}://{shown}:{port}"
    what = " and ".join(f"{kind} tables" for kind in stores.kinds)
    guard = "bearer token required" if token else "no token: loopback only"
    return f"coldwake: query API on {url} serving the {what} of {stores.data_dir} ({guard})"


def _fail(message: str) -> int:
    print(f"coldwake: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until it is stopped; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        token = _token()
        address = _address(args.host, args.port)
        if not address.loopback and token is None:
            raise StartError(
                f"--host {args.host} is not loopback: set {TOKEN_VAR} to a long random string "
                "(clients send 'Authorization: Bearer <token>'), or bind 127.0.0.1"
            )
        _check_tls(args.tls_cert, args.tls_key)
        # The container chart's band: the same setting as the vessel flow's.
        tolerance_c: float = value(os.environ, threshold_var("tolerance_c"))
        mirrors = None if args.mirror_dir is None else MirrorWatch(args.mirror_dir)
        stores = Stores(args.data)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    except (StartError, StoreError, StateMissingError) as exc:
        return _fail(str(exc))
    try:
        sock = _bind(address)
        # Imported only now: a refusal above answers without loading the web stack.
        import uvicorn

        from state.api.app import create_app
        from state.api.protocol import JsonErrorsH11

        config = uvicorn.Config(
            create_app(stores, token, tolerance_c, mirrors),
            http=JsonErrorsH11,
            lifespan="off",
            log_level="warning",
            access_log=False,  # /metrics counts requests; a line each would cost more
            server_header=False,
            proxy_headers=False,  # nobody in front to trust
            h11_max_incomplete_event_size=MAX_REQUEST_HEAD,
            timeout_graceful_shutdown=_GRACE_S,
            ssl_certfile=args.tls_cert,
            ssl_keyfile=args.tls_key,
        )
        config.load()
        if mirrors is not None:
            mirrors.start()
        print(
            _describe(stores, sock, args.tls_cert is not None, token is not None),
            file=sys.stderr,
            flush=True,
        )
        uvicorn.Server(config).run(sockets=[sock])
    except StartError as exc:
        return _fail(str(exc))
    finally:
        stores.close()
    return 0
