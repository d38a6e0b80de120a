"""Which partitions the contract's topics have, found within a timeout."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from flows.config import Settings
from flows.contract import INPUT_TOPICS, OUTPUT_TOPICS
from flows.edges.kafka.errors import KafkaUnavailableError


def topic_partitions(brokers: str, topics: tuple[str, ...], timeout_s: float) -> list[str]:
    """Partition names like `reefer.telemetry[3]` of existing topics, within a timeout."""
    # The client's own connection-refused lines would bury the one line said below.
    admin = AdminClient(
        {
            "bootstrap.servers": brokers,
            "log_level": 0,
            "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"no Kafka broker answered at {brokers} within {timeout_s:g} s ({exc.args[0]}); "
            "check COLDWAKE_BROKERS and that the cluster is up, or raise COLDWAKE_KAFKA_TIMEOUT_S"
        ) from None
    names = []
    for topic in topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaUnavailableError(
                f"topic {topic!r} does not exist on {brokers}; create it (python -m deploy.kafka "
                "up creates the contract's topics) — Coldwake never auto-creates topics"
            )
        names += [f"{topic}[{p}]" for p in sorted(info.partitions)]
    return names


def split_name(name: str) -> tuple[str, int]:
    """`reefer.telemetry[3]` -> (`reefer.telemetry`, 3)."""
    topic, _, rest = name.partition("[")
    return topic, int(rest.rstrip("]"))


def preflight(settings: Settings) -> None:
    """Check at start that the brokers answer and the topics exist (one clear error)."""
    if settings.input.kind == "kafka":
        topic_partitions(settings.kafka.brokers, INPUT_TOPICS, settings.kafka.timeout_s)
    if settings.output == "kafka":
        topic_partitions(settings.kafka.brokers, OUTPUT_TOPICS, settings.kafka.timeout_s)
