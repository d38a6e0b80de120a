"""Picking ports and cluster ids for a new deployment.

Ports are taken below Linux's ephemeral range (32768 and up): ports from ``bind(0)``
come from that range, where the brokers' own outgoing connections take ports too, so
one could take a listener's port between the check here and the JVM's bind (seen as a
broker that exits while starting).
"""

from __future__ import annotations

import base64
import random
import secrets
import socket
from collections.abc import Sequence
from typing import Final

from deploy.kafka.errors import LauncherError

HOST: Final = "127.0.0.1"
LOWEST: Final = 20_000
HIGHEST: Final = 32_000


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes, base64url without padding."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka avoids these too: they read as CLI flags.
            return cid


def pick_ports(count: int, base_port: int | None) -> list[int]:
    """``count`` consecutive free ports on 127.0.0.1, from ``base_port`` or anywhere free.

    Raises:
        LauncherError: ``base_port`` is out of range or its ports are taken, or no free
            run of ports was found.
    """
    if base_port is None:
        return free_ports(count)
    if not 1024 <= base_port <= 65535 - count:
        raise LauncherError(f"base port {base_port} is out of range; use 1024 to {65535 - count}")
    ports = list(range(base_port, base_port + count))
    check_ports_free(ports)
    return ports


def free_ports(count: int) -> list[int]:
    """``count`` consecutive free ports between 20000 and 32000 (see the module docstring).

    Raises:
        LauncherError: None found after 100 tries.
    """
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(LOWEST, HIGHEST - count)
        ports = list(range(base, base + count))
        try:
            check_ports_free(ports)
        except LauncherError:
            continue
        return ports
    raise LauncherError(f"found no {count} free consecutive ports in {LOWEST}-{HIGHEST} on {HOST}")


def check_ports_free(ports: Sequence[int]) -> None:
    """Raise unless every port in ``ports`` can be bound on 127.0.0.1.

    Raises:
        LauncherError: Naming the first taken port.
    """
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # As Kafka does: a port whose old connections linger in TIME_WAIT is usable.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError as e:
                raise LauncherError(
                    f"port {port} on {HOST} is not free ({e.strerror}); pick another base port"
                ) from None
