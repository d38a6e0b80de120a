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


def test_records_after_a_short_pause_are_active_after_a_long_one_resumed() -> None:
    rule = IdleRule(idle_s=5.0, quiet_since=0.0)
    assert rule.delivered(1.0) is PartState.ACTIVE
    assert rule.quiet(6.0, _no_backlog)  # idle since 6
    assert rule.delivered(20.9) is PartState.ACTIVE  # 14.9 s < 3 timeouts
    assert rule.quiet(25.9, _no_backlog)  # idle again since 25.9
    assert rule.quiet(30.9, _no_backlog)  # re-confirmed: the spell still began at 25.9
    assert rule.delivered(40.9) is PartState.RESUMED  # 15 s = 3 timeouts
    assert rule.delivered(41.0) is PartState.ACTIVE  # delivering again: no longer paused


def test_delivering_resets_the_quiet_time() -> None:
    rule = IdleRule(idle_s=5.0, quiet_since=0.0)
    rule.delivered(4.0)
    assert not rule.quiet(8.0, _no_backlog)
    assert rule.quiet(9.0, _no_backlog)
