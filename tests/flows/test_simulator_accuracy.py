"""Every labelled failure the contract's rules should catch is caught; healthy units stay quiet.

Precision and recall are measured per (container, alert kind) against the
simulator's ground truth, at default thresholds, for the default seed and 5 more,
over every alert kind of the contract: version 2's `atmosphere_out_of_range`
(failing gas sensors, scrubbers of controlled-atmosphere units) and
`power_unstable` (a flickering supply) included.
Labels with `expect == ()` (door opened in port, defrost, duplicates, late
re-sends, malformed lines) are events the rules by design do not alert on.
"""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from flows.config import DEFAULT_THRESHOLDS
from flows.contract import ALERT_KINDS, ALERTS
from flows.events import parse, parse_ts
from flows.rules.detector import Detector
from flows.sim import SimConfig, generate, labels

SEEDS = [7, 1, 2, 3, 4, 5]


def _alerts(cfg: SimConfig) -> list[dict[str, str]]:
    detector = Detector(DEFAULT_THRESHOLDS)
    detector.process(parse(line, f"sim:{i + 1}") for i, line in enumerate(generate(cfg)))
    detector.end_of_input()
    return [orjson.loads(v) for _, v in detector.drain().of(ALERTS) if b'"open"' in v]


@pytest.mark.parametrize("seed", SEEDS)
def test_precision_and_recall_are_100_percent(seed: int) -> None:
    cfg = SimConfig(seed=seed, containers=250, hours=48.0)
    truth = [label for label in labels(cfg) if label.expect]
    assert len(truth) >= 10, "the simulation should inject failures of every kind"

    expected: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for label in truth:
        for kind in label.expect:
            expected[(label.container_id, kind)].append(
                (parse_ts(label.start), parse_ts(label.end))
            )

    found: set[tuple[str, str, int]] = set()
    false_alarms = []
    for alert in _alerts(cfg):
        key = (alert["container_id"], alert["kind"])
        started = parse_ts(alert["started_at"])
        spans = [i for i, (a, b) in enumerate(expected.get(key, [])) if a <= started <= b]
        if spans:
            found.add((*key, spans[0]))
        else:
            false_alarms.append(alert)
    missed = [
        (key, span)
        for key, spans in expected.items()
        for i, span in enumerate(spans)
        if (*key, i) not in found
    ]
    assert false_alarms == [], f"precision < 100 %: {false_alarms[:3]}"
    assert missed == [], f"recall < 100 %: {missed[:3]}"
    kinds = {kind for _, kind in expected}
    assert kinds == set(ALERT_KINDS)
