"""The simulation: a planned fleet's records in gateway order, and the public API on top.

`Simulation` turns each vessel's fixes and each container's readings (with
their duplicate and late re-sends) into sorted streams, merges them, inserts
malformed lines and labels the re-sends and malformed lines on the way.
`generate`, `emissions`, `labels`, `write_files` and `load_labels` are what
the rest of the project uses.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from flows.contract import POSITION, TELEMETRY
from flows.sim.atmosphere import AIR_O2_PCT, emitted_gas, gas_reading
from flows.sim.config import DUPLICATE, HOUR, LATE, MALFORMED, MINUTE, Emission, Label, SimConfig
from flows.sim.container import Container
from flows.sim.fleet import Fleet, Vessel
from flows.sim.ids import fmt_ts
from flows.sim.malformed import MALFORMED_KINDS, malformed_line
from flows.sim.physics import FAILURE_NOISE_C, HEALTHY_NOISE_C, healthy_power_kw, sensor_noise

# Heap items: (ts, order, vessel, container, sub, line, tag, original ts). The first
# five fields are unique, so the merge never compares lines; order 0 puts a
# position before the telemetry of the same second.
_Item = tuple[int, int, int, int, int, bytes, int, int]
_PLAIN: Final = 0
_RESENT: Final = 1  # an original reading that is re-sent later
_DUPLICATE_COPY: Final = 2
_LATE_COPY: Final = 3


_MERGE_CHUNK_S: Final = 4 * HOUR


def _merge(streams: Sequence[Iterator[_Item]], t_end: int) -> Iterator[_Item]:
    """Heap-merge streams that are each sorted by key into one sorted stream.

    Unlike a plain `heapq.merge` over the generators, it drains each stream a few
    hours at a time and heap-merges those slices: resuming a different generator
    for every item costs several times the work of the items themselves (their
    frames and random states keep falling out of the CPU caches). Each stream is
    nondecreasing in ts, so merging slice after slice keeps the global order.
    """
    heads: list[_Item | None] = [next(s, None) for s in streams]
    bound = min((h[0] for h in heads if h is not None), default=t_end)
    while any(h is not None for h in heads):
        bound += _MERGE_CHUNK_S
        slices: list[list[_Item]] = []
        for i, stream in enumerate(streams):
            head, chunk = heads[i], []
            while head is not None and head[0] < bound:
                chunk.append(head)
                head = next(stream, None)
            heads[i] = head
            slices.append(chunk)
        # The first five fields are unique, so the heap never compares the lines.
        yield from heapq.merge(*slices)


def _r(value: float, digits: int) -> float:
    # + 0.0 turns a rounded -0.0 into 0.0, which reads better in the output.
    return round(value, digits) + 0.0


@dataclass(slots=True)
class Stats:
    """Counts of one run's lines (records = readings + positions + malformed) and labels."""

    records: int = 0
    readings: int = 0
    positions: int = 0
    malformed: int = 0
    labels: int = 0


class Simulation:
    """Plans a whole fleet for a config, then emits its lines once and collects labels."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.fleet = Fleet(cfg)
        self.stats = Stats()
        self._labels = list(self.fleet.labels)
        self._done = False

    # -- record streams -------------------------------------------------------

    def _positions(self, v: Vessel) -> Iterator[_Item]:
        """AIS-like fixes every 2-5 min from the first second of the run."""
        rng = self.fleet.rng("positions", v.index)
        t = self.fleet.t0
        while t < self.fleet.t_end:
            state = v.voyage.state_at(t)
            if state.port is None:
                sog = state.speed_kn + rng.gauss(0.0, 0.25)
                cog = (state.course_deg + rng.gauss(0.0, 0.8)) % 360.0
            else:
                sog = rng.uniform(0.0, 0.3)  # alongside: GPS jitter only
                cog = rng.uniform(0.0, 360.0)  # course is meaningless when not moving
            record = {
                "type": POSITION,
                "vessel_id": v.imo,
                "ts": fmt_ts(t),
                "lat": _r(state.lat, 5),
                "lon": _r(state.lon, 5),
                "sog_kn": _r(sog, 1),
                "cog_deg": _r(cog, 1) % 360.0,
            }
            yield (t, 0, v.index, 0, 0, orjson.dumps(record), _PLAIN, t)
            t += rng.randint(120, 300)

    def _readings(self, v: Vessel, c: Container) -> Iterator[_Item]:
        """The container's readings in time order, with its duplicate and late re-sends."""
        rng = self.fleet.rng("noise", v.index, c.ci)
        rnd, uniform = rng.random, rng.uniform
        f = c.failure
        drift = f.drift if f else None
        dropped = f.dropped if f else range(0)
        door = f.door if f else {}
        bad = f.bad if f else {}
        gas = f.gas if f else {}
        off = f.off if f else frozenset()
        ca = c.ca
        controlled = ca is not None
        sp, supply = c.setpoint, c.commodity.supply_control
        t0, ambient = self.fleet.t0, v.ambient
        noise = 0.0
        pending: dict[int, bytes] = {}
        for n, t in enumerate(c.times):
            # The controller's regulation error wanders slowly (AR(1)), never past 0.55 °C.
            noise = min(
                max(0.6 * noise + sensor_noise(rnd, 0.15), -HEALTHY_NOISE_C), HEALTHY_NOISE_C
            )
            if n in dropped:
                continue
            amb = ambient[(t - t0) // MINUTE] + c.ambient_offset
            temp = sp + noise
            # Secondary sensors get plain uniform noise: cheaper, and nothing rides on its shape.
            power = min(max(healthy_power_kw(amb, sp) + 0.4 * (rnd() - 0.5), 1.5), 4.5)
            ret = temp + (c.return_delta if supply else 0.0) + 0.3 * (rnd() - 0.5)
            humidity = c.humidity + 4.0 * (rnd() - 0.5)
            co2, o2 = gas_reading(c.co2, c.o2, controlled, rnd)
            defrost = n in c.defrost
            if defrost:
                # The coil heater warms the air on purpose; the excursion rule skips it.
                temp = sp + c.defrost[n]
                power = uniform(3.0, 4.5)
                ret = temp + 0.5
            if drift is not None and drift.start <= t < drift.end:
                u = drift.curve[(t - drift.start) // MINUTE]
                temp = sp + u + sensor_noise(rnd, FAILURE_NOISE_C / 3.0)  # |noise| <= 3 sigma
                if t < drift.repair:
                    power = 0.0 if drift.power_off else uniform(0.6, 1.1)  # fans only
                    ret = temp + uniform(0.1, 0.5)
                else:
                    power = uniform(4.6, 5.8)  # full capacity while pulling down
                    ret = temp + uniform(1.0, 3.0)
            if n in off:
                power = 0.0  # a flickering supply: out for this reading
                ret = temp + uniform(0.1, 0.5)
            if n in door:
                # Outside air moves the box toward the ambient; fresh air flushes the CO2.
                effect = math.copysign(door[n], amb - sp)
                temp += effect
                ret += 2.0 * effect
                humidity += 5.0
                co2 = 0.04
                o2 = AIR_O2_PCT - 0.9 * co2 + 0.1 * (rnd() - 0.5)
            co2, o2 = gas[n] if n in gas else emitted_gas(co2, o2)
            record: dict[str, Any] = {
                "type": TELEMETRY,
                "container_id": c.cid,
                "vessel_id": v.imo,
                "ts": fmt_ts(t),
                "setpoint_c": sp,
                # round(...) + 0.0 turns a rounded -0.0 into 0.0.
                "temp_c": round(temp, 1) + 0.0,
                "power_kw": round(power, 2) + 0.0,
                "return_c": round(ret, 1) + 0.0,
                "ambient_c": round(amb + 0.6 * (rnd() - 0.5), 1) + 0.0,
                "humidity_pct": round(min(max(humidity, 20.0), 99.5), 1),
                "co2_pct": co2,
                "o2_pct": o2,
                "door_open": n in door,
                "defrost": defrost,
            }
            if ca is not None:
                record["co2_setpoint_pct"], record["o2_setpoint_pct"] = ca
            if n in bad:
                name, value = bad[n]
                record[name] = value
            line = orjson.dumps(record)
            if n in c.late_sources:
                pending[n] = line
            resent = n in c.duplicate or n in c.late_sources
            yield (t, 1, v.index, c.ci, 0, line, _RESENT if resent else _PLAIN, t)
            if n in c.duplicate:
                yield (t, 1, v.index, c.ci, 1, line, _DUPLICATE_COPY, t)
            for k, src in enumerate(c.late_at.get(n, ())):
                yield (t, 1, v.index, c.ci, 2 + k, pending.pop(src), _LATE_COPY, c.times[src])

    def emissions(self) -> Iterator[Emission]:
        """All lines in gateway order; labels of re-sends and malformed lines on the way."""
        if self._done:
            raise RuntimeError("a simulation emits once; build a new one to replay")
        streams: list[Iterator[_Item]] = []
        for v in self.fleet.vessels:
            streams.append(self._positions(v))
            streams.extend(self._readings(v, c) for c in v.containers)
        keys = {(v.index, c.ci): c.cid.encode() for v in self.fleet.vessels for c in v.containers}
        imos = [v.imo for v in self.fleet.vessels]
        stats = self.stats
        mal_rng = self.fleet.rng("malformed")
        rate = self.cfg.malformed_rate
        originals: dict[tuple[int, int, int], int] = {}
        # Malformed lines imitate the latest records of the vessel they follow.
        last_telemetry: list[bytes | None] = [None] * len(self.fleet.vessels)
        last_position = [b""] * len(self.fleet.vessels)
        line_no = 0
        for ts, order, vi, ci, _sub, line, tag, orig_ts in _merge(streams, self.fleet.t_end):
            line_no += 1
            if order == 0:
                stats.positions += 1
                last_position[vi] = line
                yield Emission(line, POSITION, imos[vi].encode())
            else:
                stats.readings += 1
                last_telemetry[vi] = line
                yield Emission(line, TELEMETRY, keys[vi, ci])
            if tag == _RESENT:
                originals[vi, ci, ts] = line_no
            elif tag != _PLAIN:
                self._labels.append(
                    self._resend_label(vi, ci, ts, orig_ts, tag, line_no, originals)
                )
            if rate and mal_rng.random() < rate:
                line_no += 1
                variant = stats.malformed % len(MALFORMED_KINDS)
                bad, topic = malformed_line(variant, last_telemetry[vi], last_position[vi])
                stats.malformed += 1
                yield Emission(bad, topic, b"")
                self._labels.append(
                    Label(
                        "",
                        imos[vi],
                        MALFORMED,
                        fmt_ts(ts),
                        fmt_ts(ts),
                        (),
                        f"line {line_no}: {MALFORMED_KINDS[variant]}",
                    )
                )
        stats.records = line_no
        self._labels.sort(key=lambda b: (b.start, b.container_id, b.kind, b.end, b.note))
        stats.labels = len(self._labels)
        self._done = True

    def _resend_label(
        self,
        vi: int,
        ci: int,
        ts: int,
        orig_ts: int,
        tag: int,
        line_no: int,
        originals: dict[tuple[int, int, int], int],
    ) -> Label:
        v = self.fleet.vessels[vi]
        cid = v.containers[ci].cid
        original = originals.pop((vi, ci, orig_ts))
        if tag == _DUPLICATE_COPY:
            note = f"line {line_no}: duplicate of line {original}"
            return Label(cid, v.imo, DUPLICATE, fmt_ts(orig_ts), fmt_ts(orig_ts), (), note)
        note = f"line {line_no}: late copy of line {original}, {ts - orig_ts} s behind"
        return Label(cid, v.imo, LATE, fmt_ts(orig_ts), fmt_ts(orig_ts), (), note)

    def labels(self) -> list[Label]:
        """Ground truth, sorted; complete once `emissions()` has been exhausted."""
        if not self._done:
            for _ in self.emissions():
                pass
        return list(self._labels)


# ---------------------------------------------------------------------------
# Public API


def emissions(cfg: SimConfig) -> Iterator[Emission]:
    """The lines of `generate(cfg)` with the Kafka topic and key each belongs to."""
    yield from Simulation(cfg).emissions()


def generate(cfg: SimConfig) -> Iterator[bytes]:
    """JSONL lines (no trailing newline) in emission order; same config, same bytes."""
    for emission in Simulation(cfg).emissions():
        yield emission.line


def labels(cfg: SimConfig) -> list[Label]:
    """Ground truth for `generate(cfg)`, sorted by (start, container_id, kind)."""
    return Simulation(cfg).labels()


def _label_line(label: Label) -> bytes:
    return orjson.dumps(asdict(label))


def load_labels(path: Path) -> list[Label]:
    """Read a labels.jsonl written by `write_files`."""
    result: list[Label] = []
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                obj = orjson.loads(line)
                result.append(Label(**{**obj, "expect": tuple(obj["expect"])}))
    return result


def write_run(cfg: SimConfig, out_dir: Path) -> tuple[Path, Path, Stats]:
    """`write_files`, also returning the run's counts (for the CLI's summary)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path, labels_path = out_dir / "records.jsonl", out_dir / "labels.jsonl"
    sim = Simulation(cfg)
    # One pass feeds both outputs: the emission loop also collects the labels.
    # (The CLI's `--kafka BROKERS` produces the written records file afterwards.)
    with records_path.open("wb") as fh:
        fh.writelines(e.line + b"\n" for e in sim.emissions())
    with labels_path.open("wb") as fh:
        fh.writelines(_label_line(label) + b"\n" for label in sim.labels())
    return records_path, labels_path, sim.stats


def write_files(cfg: SimConfig, out_dir: Path) -> tuple[Path, Path]:
    """Write `out_dir/records.jsonl` and `out_dir/labels.jsonl`; return their paths."""
    records_path, labels_path, _ = write_run(cfg, out_dir)
    return records_path, labels_path
