"""A fresh fleet run starts its `fleet.*` topics empty; a resumed one keeps them."""

from __future__ import annotations

import pytest

from flows.edges.kafka.changelog import ensure_fleet_topics
from flows.fleet_core.names import VESSELS
from tests.integration.conftest import KafkaClusters
from tests.support.kafka import produce, topic_records

pytestmark = pytest.mark.integration


def _rows(brokers: str) -> list[tuple[bytes | None, bytes | None]]:
    partitions = topic_records(brokers, VESSELS.topic)
    return sorted(row for rows in partitions.values() for row in rows)


def test_only_a_fresh_start_empties_the_changelogs(kafka_clusters: KafkaClusters) -> None:
    brokers = kafka_clusters.shore_brokers
    ensure_fleet_topics(brokers, 30.0)
    produce(brokers, [(VESSELS.topic, b"IMO9536583", b'{"old":"row"}')])
    ensure_fleet_topics(brokers, 30.0)  # a resume: the rows stay
    assert (b"IMO9536583", b'{"old":"row"}') in _rows(brokers)
    ensure_fleet_topics(brokers, 30.0, fresh=True)  # a fresh run: gone
    assert _rows(brokers) == []
