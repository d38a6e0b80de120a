"""`power_unstable`: the third power_loss within 6 hours of the first, and 6 calm hours to close."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from flows.config import DEFAULT_THRESHOLDS
from tests.support.builders import at, detect, reading


def _minutes(zero_power: set[int], until: int) -> list[bytes]:
    """A reading every minute from 0 to `until`, without power at the given minutes."""
    return [reading(m, power_kw=0.0 if m in zero_power else 2.5) for m in range(until + 1)]


def _power(out: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str, str, str | None]]:
    return [
        (a["kind"], a["state"], a["started_at"], a["opened_at"], a["closed_at"])
        for a in out["alerts"]
        if a["kind"] in ("power_loss", "power_unstable")
    ]


def test_a_third_loss_5h59_after_the_first_makes_the_supply_unstable_until_6h_calm() -> None:
    out, _ = detect(_minutes({0, 1, 100, 101, 359, 360}, 730))
    assert _power(out) == [
        ("power_loss", "open", at(0), at(1), None),
        ("power_loss", "closed", at(0), at(1), at(2)),
        ("power_loss", "open", at(100), at(101), None),
        ("power_loss", "closed", at(100), at(101), at(102)),
        ("power_loss", "open", at(359), at(360), None),
        ("power_unstable", "open", at(0), at(360), None),
        ("power_loss", "closed", at(359), at(360), at(361)),
        ("power_unstable", "closed", at(0), at(360), at(721)),  # 6 h after the last loss closed
    ]


def test_a_third_loss_6h01_after_the_first_is_just_another_loss() -> None:
    out, _ = detect(_minutes({0, 1, 100, 101, 361, 362}, 400))
    assert [k for k, s, *_ in _power(out) if s == "open"] == ["power_loss"] * 3


def test_a_loss_during_the_calm_restarts_it() -> None:
    out, _ = detect(_minutes({0, 1, 100, 101, 200, 201, 500, 501}, 1000))
    unstable = [(s, c) for k, s, _, _, c in _power(out) if k == "power_unstable"]
    # The 4th loss (500) falls in the calm after the 3rd (closed 202): 6 h from 502.
    assert unstable == [("open", None), ("closed", at(862))]


@pytest.mark.parametrize(("count", "opens"), [(2, 1), (4, 0)])
def test_the_count_is_configurable(count: int, opens: int) -> None:
    th = replace(DEFAULT_THRESHOLDS, power_unstable_count=count)
    out, _ = detect(_minutes({0, 1, 100, 101, 200, 201}, 300), th)
    assert sum(1 for k, s, *_ in _power(out) if k == "power_unstable" and s == "open") == opens
