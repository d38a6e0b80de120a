"""Asking a running cluster: are the brokers serving, do the topics exist and have leaders.

Every wait here has a deadline and ends in a :class:`LauncherError` naming what is
missing; none trusts an open port alone.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Collection, Sequence
from typing import Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from deploy.kafka.errors import LauncherError
from deploy.kafka.layout import HOST, Broker
from deploy.kafka.logs import startup_errors
from deploy.kafka.processes import running_pid
from deploy.kafka.topics import TopicSpec

log: Final = logging.getLogger("deploy.kafka")


def admin_client(bootstrap: str) -> AdminClient:
    """An AdminClient for ``bootstrap`` with short timeouts."""
    return AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 5000})


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on ``port`` of 127.0.0.1."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_brokers(
    bootstrap: str,
    node_ids: Collection[int],
    *,
    timeout: float,
    watch: Sequence[Broker] = (),
) -> None:
    """Wait until every node in ``node_ids`` is registered and serving metadata.

    Args:
        bootstrap: The cluster's bootstrap servers.
        node_ids: Nodes that must be in the cluster's metadata (unfenced).
        timeout: Seconds to wait.
        watch: Nodes whose JVM must stay alive meanwhile; one that exits fails fast
            with the end of its logs.

    Raises:
        LauncherError: A watched node exited, or time ran out.
    """
    deadline = time.monotonic() + timeout
    admin: AdminClient | None = None
    seen: set[int] = set()
    while True:
        for b in watch:
            if running_pid(b) is None:
                raise LauncherError(
                    f"{b.name} exited while starting; {startup_errors(b.server_log, b.console_log)}"
                )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            missing = sorted(set(node_ids) - seen)
            raise LauncherError(
                f"brokers {missing} of {bootstrap} not ready after {timeout:.0f} s; "
                "see server.log in their directories"
            )
        # Connecting before any port is open only fills stderr with librdkafka's
        # connection-refused lines.
        if admin is None:
            if not all(port_open(int(a.rsplit(":", 1)[1])) for a in bootstrap.split(",")):
                time.sleep(0.2)
                continue
            admin = admin_client(bootstrap)
        try:
            md = admin.list_topics(timeout=min(2.0, max(remaining, 0.1)))
            seen = {int(i) for i in md.brokers}
        except KafkaException:
            seen = set()
        if set(node_ids) <= seen:
            return
        time.sleep(0.2)


def create_topics(bootstrap: str, specs: Sequence[TopicSpec], *, timeout: float = 30.0) -> None:
    """Create topics on any cluster; existing ones are left as they are.

    Returns once every partition of every topic has a leader, so producers can write
    straight away.

    Raises:
        LauncherError: A topic could not be created, or leaders did not appear in time.
    """
    if not specs:
        return
    admin = admin_client(bootstrap)
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            config=dict(s.config),
        )
        for s in specs
    ]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as e:
            err = e.args[0]
            if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                log.debug("topic %s exists already", name)
                continue
            raise LauncherError(f"cannot create topic {name} on {bootstrap}: {err.str()}") from e
    wait_for_leaders(bootstrap, [s.name for s in specs], timeout=timeout)


def wait_for_leaders(bootstrap: str, topics: Collection[str], *, timeout: float) -> None:
    """Wait until every partition of ``topics`` has a leader.

    Raises:
        LauncherError: Time ran out.
    """
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        try:
            md = admin.list_topics(timeout=min(5.0, timeout))
            ready = all(
                t in md.topics
                and md.topics[t].error is None
                and md.topics[t].partitions
                and all(p.leader >= 0 for p in md.topics[t].partitions.values())
                for t in topics
            )
        except KafkaException:
            ready = False
        if ready:
            return
        if time.monotonic() > deadline:
            raise LauncherError(f"topics {sorted(topics)} on {bootstrap} have no leaders yet")
        time.sleep(0.2)


def wait_fully_replicated(bootstrap: str, *, timeout: float) -> None:
    """Wait until every partition of every topic has all its replicas in sync.

    Raises:
        LauncherError: Time ran out.
    """
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    lagging: list[str] = []
    while True:
        try:
            md = admin.list_topics(timeout=5.0)
            lagging = [
                f"{t.topic}[{p.id}]"
                for t in md.topics.values()
                for p in t.partitions.values()
                if set(p.isrs) != set(p.replicas)
            ]
        except KafkaException as e:
            lagging = [str(e)]
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise LauncherError(
                f"{len(lagging)} partitions on {bootstrap} still lack replicas in sync, "
                f"e.g. {', '.join(lagging[:5])}"
            )
        time.sleep(0.25)
