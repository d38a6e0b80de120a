"""A config's fleet, planned before anything is emitted: vessels, containers, their events.

`Fleet` draws each vessel's identity, voyage and ambient air, each container's
cargo and reading schedule, then the failures, defrosts and re-sends, and
collects the labels of everything planned (the emitter adds those of re-sends
and malformed lines as it goes).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from flows.events import US_PER_S, parse_ts
from flows.sim.atmosphere import AIR_O2_PCT, CA_BIAS_PCT
from flows.sim.config import DEFROST, HOUR, MINUTE, Label, SimConfig, seeded_rng
from flows.sim.container import Container, reading_times
from flows.sim.failures import FailurePlanner, plan_defrosts, plan_resends
from flows.sim.ids import fmt_ts, make_container_id, make_imo
from flows.sim.physics import COMMODITIES, ambient_grid
from flows.sim.voyage import ROUTES, Voyage


@dataclass(slots=True, eq=False)
class Vessel:
    """A vessel of the fleet: its IMO number, voyage, ambient air per minute, containers."""

    index: int
    imo: str
    voyage: Voyage
    ambient: list[float]
    containers: list[Container]


class Fleet:
    """Plans every vessel of a config and the labels of what it planned."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.t0 = parse_ts(cfg.start) // US_PER_S
        self.t_end = self.t0 + round(cfg.hours * HOUR)
        self.labels: list[Label] = []  # in planning order; the emitter sorts them
        used_imos: set[str] = set()
        used_cids: set[str] = set()
        self.vessels = [self._plan_vessel(vi, used_imos, used_cids) for vi in range(cfg.vessels)]

    def rng(self, *purpose: object) -> random.Random:
        """The generator for one purpose of this config's run."""
        return seeded_rng(self.cfg.seed, *purpose)

    def _plan_vessel(self, vi: int, used_imos: set[str], used_cids: set[str]) -> Vessel:
        cfg = self.cfg
        rng = self.rng("vessel", vi)
        imo = make_imo(rng, used_imos)
        route = ROUTES[vi % len(ROUTES)]
        voyage = Voyage(route, (vi // len(ROUTES)) % len(route), self.t0, self.t_end, rng)
        ambient = ambient_grid(voyage, self.t0, (self.t_end - self.t0) // MINUTE + 2, rng)
        containers = [self._plan_container(vi, ci, used_cids) for ci in range(cfg.containers)]
        planner = FailurePlanner(voyage, ambient, self.t0, self.t_end, self.rng("faults", vi))
        planner.assign(containers, round(cfg.fault_rate * cfg.containers))
        for c in containers:
            plan_defrosts(c, self.rng("defrost", vi, c.ci))
            plan_resends(c, self.rng("resend", vi, c.ci), cfg.duplicate_rate, cfg.late_rate)
        vessel = Vessel(vi, imo, voyage, ambient, containers)
        self.labels.extend(self._planned_labels(vessel))
        return vessel

    def _plan_container(self, vi: int, ci: int, used_cids: set[str]) -> Container:
        rng = self.rng("container", vi, ci)
        commodity = rng.choices(COMMODITIES, weights=[c.weight for c in COMMODITIES])[0]
        c = Container(
            ci=ci,
            cid=make_container_id(rng, used_cids),
            commodity=commodity,
            setpoint=rng.choice(commodity.setpoints),
            times=reading_times(rng, self.t0, self.t_end),
            ambient_offset=rng.uniform(-1.0, 2.5),
            return_delta=rng.uniform(2.0, 3.5)
            if commodity.name == "bananas"  # ripening fruit gives off heat
            else rng.uniform(1.0, 2.5),
            humidity=rng.uniform(*commodity.humidity),
            co2=rng.uniform(*commodity.co2),
            o2=0.0,
        )
        if rng.random() < commodity.ca_share:
            # The controller holds each gas within a small bias of its setpoint.
            c.ca = rng.choice(commodity.ca_setpoints)
            c.co2 = c.ca[0] + rng.uniform(-CA_BIAS_PCT, CA_BIAS_PCT)
            c.o2 = c.ca[1] + rng.uniform(-CA_BIAS_PCT, CA_BIAS_PCT)
        else:
            c.o2 = AIR_O2_PCT - 0.9 * c.co2  # respiration takes what it gives off
        return c

    def _planned_labels(self, v: Vessel) -> Iterator[Label]:
        for c in v.containers:
            f = c.failure
            if f is not None:
                yield Label(c.cid, v.imo, f.kind, fmt_ts(f.start), fmt_ts(f.end), f.expect, f.note)
            runs: list[list[int]] = []
            for n in sorted(c.defrost):
                if runs and runs[-1][-1] == n - 1:
                    runs[-1].append(n)
                else:
                    runs.append([n])
            for run in runs:
                top = max(c.defrost[n] for n in run)
                yield Label(
                    c.cid, v.imo, DEFROST, fmt_ts(c.times[run[0]]), fmt_ts(c.times[run[-1]]), (),
                    f"{len(run)} defrost reading(s), up to setpoint {top:+.1f} C",
                )  # fmt: skip
