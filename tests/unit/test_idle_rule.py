"""When a quiet Kafka partition stops holding the merge back: the pure rule, on a fake clock."""

from __future__ import annotations

from flows.edges.kafka.idle import IdleRule
from flows.watermark import PartState


def _no_backlog() -> bool:
    return False


def test_a_partition_is_idle_after_the_timeout_and_says_so_again_every_timeout() -> None:
    rule = IdleRule(idle_s=5.0, quiet_since=100.0)
    assert not rule.quiet(104.9, _no_backlog)
    assert rule.quiet(105.0, _no_backlog)
    assert not rule.quiet(109.0, _no_backlog)  # said at 105; again only at 110
    assert rule.quiet(110.0, _no_backlog)


def test_unread_records_on_the_broker_make_a_partition_late_not_idle() -> None:
    rule = IdleRule(idle_s=5.0, quiet_since=0.0)
    assert not rule.quiet(60.0, lambda: True)  # however long it waits
    assert rule.quiet(61.0, _no_backlog)


def test_the_broker_is_asked_only_once_the_timeout_has_passed() -> None:
    asked: list[float] = []

    def backlog() -> bool:
        asked.append(1.0)
        return False

    rule = IdleRule(idle_s=5.0, quiet_since=0.0)
    rule.quiet(1.0, backlog)
    rule.quiet(4.0, backlog)
    assert asked == []
    rule.quiet(5.0, backlog)
    assert asked == [1.0]


def test_records_after_an_idle_claim_are_resumed_however_short_the_pause() -> None:
    rule = IdleRule(idle_s=5.0, quiet_since=0.0)
    assert rule.delivered(4.9) is PartState.ACTIVE  # quiet, but never said idle
    assert rule.quiet(9.9, _no_backlog)  # idle since 9.9
    assert rule.delivered(10.0) is PartState.RESUMED  # 0.1 s after the claim
    assert rule.delivered(10.5) is PartState.ACTIVE  # delivering again: no claim to void
    assert rule.quiet(15.5, _no_backlog)
    assert rule.quiet(20.5, _no_backlog)  # re-confirmed
    assert rule.delivered(60.0) is PartState.RESUMED


def test_delivering_resets_the_quiet_time() -> None:
    rule = IdleRule(idle_s=5.0, quiet_since=0.0)
    rule.delivered(4.0)
    assert not rule.quiet(8.0, _no_backlog)
    assert rule.quiet(9.0, _no_backlog)
