"""Deterministic fleet simulator with labelled failures.

It plays what a vessel's gateway would send: `vessel.position` fixes of ships
sailing great-circle legs between real ports, and `reefer.telemetry` readings of
refrigerated containers whose temperatures follow a small physical model of the
ambient air, with failures injected at known times. `labels()` is the ground
truth for the same config: which failure happened where and when, and which
alert kinds the contract's rules must raise for it at default thresholds.

Every random draw comes from a private `random.Random` seeded from
`SimConfig.seed` and the purpose of the draw (one per vessel, container and
concern), never from the global generator or the wall clock, so a config always
yields the same bytes.

The code reads top-down: configuration and labels, identifiers, voyage
(ports, legs, great circles), physics (ambient air, cargo, drift curves),
failure scheduling, emission, public API, CLI.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson

from flows.events import POSITION, TELEMETRY, US_PER_S, iso6346_check_digit, parse_ts

__all__ = [
    "PORTS",
    "Emission",
    "Label",
    "SimConfig",
    "emissions",
    "generate",
    "imo_check_digit",
    "labels",
    "load_labels",
    "main",
    "write_files",
]

MINUTE: Final = 60
HOUR: Final = 3600
DAY: Final = 86_400

# Label kinds: the injected failures, then the events the rules by design ignore.
COMPRESSOR_FAILURE: Final = "compressor_failure"
POWER_CUT: Final = "power_cut"
SILENT_SENSOR: Final = "silent_sensor"
IMPLAUSIBLE_SENSOR: Final = "implausible_sensor"
DOOR_OPEN_AT_SEA: Final = "door_open_at_sea"
DOOR_OPEN_IN_PORT: Final = "door_open_in_port"
DEFROST: Final = "defrost"
MALFORMED: Final = "malformed"
DUPLICATE: Final = "duplicate"
LATE: Final = "late"
FAILURE_KINDS: Final = (
    COMPRESSOR_FAILURE,
    POWER_CUT,
    SILENT_SENSOR,
    IMPLAUSIBLE_SENSOR,
    DOOR_OPEN_AT_SEA,
    DOOR_OPEN_IN_PORT,
)

# Alert kinds of the contract.
TEMPERATURE_EXCURSION: Final = "temperature_excursion"
POWER_LOSS: Final = "power_loss"
SENSOR_SILENT: Final = "sensor_silent"
SENSOR_FAULT: Final = "sensor_fault"
DOOR_ALERT: Final = "door_open_at_sea"

# The mix of injected failures: faulty containers take these kinds in turn, so
# every run with at least ten faulty containers per vessel has all of them.
FAILURE_MIX: Final = (
    COMPRESSOR_FAILURE,
    POWER_CUT,
    SILENT_SENSOR,
    DOOR_OPEN_AT_SEA,
    IMPLAUSIBLE_SENSOR,
    POWER_CUT,
    COMPRESSOR_FAILURE,
    DOOR_OPEN_IN_PORT,
    SILENT_SENSOR,
    DOOR_OPEN_AT_SEA,
)
# Kinds that fit almost any container and time, for when a kind finds no host.
_FALLBACK_KINDS: Final = (SILENT_SENSOR, IMPLAUSIBLE_SENSOR)

# Margins from the contract's default thresholds (tolerance 2.0 °C, excursion
# 30 min, silence 30 min, door speed 2.0 kn), used when designing failures.
_EDGE_MARGIN_S: Final = 3 * HOUR  # failures stay this far from first reading and run end
_DEFROST_MARGIN_S: Final = HOUR  # no defrost this close to a failure window
_HEALTHY_NOISE_C: Final = 0.55  # |temp - setpoint| of a healthy unit, before rounding
_FAILURE_NOISE_C: Final = 0.2  # bound of the sensor noise on top of a planned drift curve
_IN_BAND_C: Final = 1.1  # a drift that peaks below this never reads beyond 1.5 °C
_CLEARLY_OUT_C: Final = 2.6  # a drift above this always reads beyond 2.0 °C
_FLAP_C: Final = 1.7  # below this a drift never reads beyond 2.0 °C
_CLEARLY_OUT_MIN: Final = 60  # minutes clearly out of range, for a 30 min rule
_RECOVERED_C: Final = 0.3  # a pull-down ends when the deviation is this small
_COMPRESSOR_MIN_DELTA_C: Final = 8.0  # |ambient - setpoint| needed for a compressor failure
_SEA_MARGIN_S: Final = 2 * HOUR  # door at sea only this far inside a leg (speed >> 2 kn)
_PORT_MARGIN_S: Final = HOUR  # door in port only this far inside a port stay
_LATE_WITHIN_S: Final = HOUR


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate; the same config always yields the same bytes.

    Attributes:
        seed: Seed of every random draw.
        vessels: Number of vessels; each sails its own route.
        containers: Reefer containers per vessel.
        hours: Simulated time span.
        start: Start of the simulation, RFC 3339 with an offset.
        fault_rate: Share of containers that get exactly one injected failure.
        malformed_rate: Share of emitted lines followed by an extra malformed line.
        duplicate_rate: Share of readings re-sent identically right after.
        late_rate: Share of readings re-sent late (after newer readings).
    """

    seed: int = 7
    vessels: int = 1
    containers: int = 500
    hours: float = 48.0
    start: str = "2026-11-20T00:00:00Z"
    fault_rate: float = 0.08
    malformed_rate: float = 0.001
    duplicate_rate: float = 0.002
    late_rate: float = 0.002

    def __post_init__(self) -> None:
        if self.vessels < 1:
            raise ValueError(f"vessels must be at least 1, got {self.vessels}")
        if self.containers < 0:
            raise ValueError(f"containers must not be negative, got {self.containers}")
        if not (math.isfinite(self.hours) and 0.0 < self.hours <= 24.0 * 366):
            raise ValueError(f"hours must be in (0, 8784], got {self.hours}")
        for name in ("fault_rate", "malformed_rate", "duplicate_rate", "late_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.duplicate_rate + self.late_rate > 1.0:
            raise ValueError("duplicate_rate + late_rate must not exceed 1")
        try:
            parse_ts(self.start)
        except ValueError:
            raise ValueError(
                f"start must be RFC 3339 with an offset, e.g. 2026-11-20T00:00:00Z, "
                f"got {self.start!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth for one injected event.

    Attributes:
        container_id: The container, or "" for vessel-level labels (malformed lines).
        vessel_id: The vessel.
        kind: One of the label kinds (`FAILURE_KINDS`, defrost, malformed,
            duplicate, late).
        start: First moment of the event, RFC 3339 UTC.
        end: Last moment of the event (recovery included), RFC 3339 UTC.
        expect: Alert kinds the contract's rules must raise for it at default
            thresholds; () when the rules by design see nothing.
        note: Human-readable detail; "line N" names emitted lines (1-based).
    """

    container_id: str
    vessel_id: str
    kind: str
    start: str
    end: str
    expect: tuple[str, ...]
    note: str = ""


class Emission(NamedTuple):
    """One emitted line with where a Kafka producer would send it."""

    line: bytes
    topic: str
    key: bytes


# ---------------------------------------------------------------------------
# Time and identifiers


@lru_cache(maxsize=8192)
def _minute_prefix(minute: int) -> str:
    return datetime.fromtimestamp(minute * MINUTE, UTC).strftime("%Y-%m-%dT%H:%M:")


def _fmt(t: int) -> str:
    """Epoch seconds as RFC 3339 UTC; a cached minute prefix spares a strftime per record."""
    minute, second = divmod(t, MINUTE)
    return f"{_minute_prefix(minute)}{second:02d}Z"


def imo_check_digit(first_six: str) -> int:
    """Check digit of an IMO ship number: the six digits weighted 7..2, sum mod 10."""
    return sum(int(d) * w for d, w in zip(first_six, range(7, 1, -1), strict=True)) % 10


def _make_imo(rng: random.Random, used: set[str]) -> str:
    while True:
        # Ships built since the 1990s carry numbers starting with 9.
        digits = "9" + "".join(str(rng.randrange(10)) for _ in range(5))
        imo = f"IMO{digits}{imo_check_digit(digits)}"
        if imo not in used:
            used.add(imo)
            return imo


# Real owner codes of reefer fleets; all in category U (freight container).
_OWNER_CODES: Final = (
    "MSKU", "MNBU", "MAEU", "CMAU", "CGMU", "HLXU", "SZLU", "TRIU",
    "OOLU", "SEGU", "TTNU", "CAIU", "CXRU", "MWCU", "ONEU", "TEMU",
)  # fmt: skip


def _make_container_id(rng: random.Random, used: set[str]) -> str:
    while True:
        prefix = f"{rng.choice(_OWNER_CODES)}{rng.randrange(1_000_000):06d}"
        cid = f"{prefix}{iso6346_check_digit(prefix)}"
        if cid not in used:
            used.add(cid)
            return cid


# ---------------------------------------------------------------------------
# Voyage: ports, legs, great circles

# Berths (lat, lon) of the ports the routes call at.
PORTS: Final[dict[str, tuple[float, float]]] = {
    "Rotterdam": (51.955, 4.050),
    "Felixstowe": (51.945, 1.330),
    "Algeciras": (36.120, -5.400),
    "Port Said": (31.255, 32.310),
    "Jebel Ali": (25.010, 55.060),
    "Colombo": (6.950, 79.840),
    "Singapore": (1.265, 103.820),
    "Shanghai": (30.625, 122.070),
    "Santos": (-23.980, -46.300),
    "Cartagena": (10.395, -75.535),
    "Balboa": (8.950, -79.570),
    "Guayaquil": (-2.710, -80.250),
    "Valparaiso": (-33.030, -71.630),
    "Durban": (-29.870, 31.050),
    "New York": (40.670, -74.080),
    "Halifax": (44.640, -63.570),
}

# Turning points at sea, so that great-circle legs stay off the land.
_WAYPOINTS: Final[dict[str, tuple[float, float]]] = {
    "Dover Strait": (51.000, 1.450),
    "Channel": (50.150, -1.000),
    "Ushant": (48.700, -5.900),
    "Lizard": (49.750, -5.400),
    "Finisterre": (43.300, -9.800),
    "St Vincent": (36.850, -9.300),
    "Gibraltar Strait": (35.960, -5.500),
    "Spartel": (35.850, -6.500),
    "Alboran": (36.000, -3.000),
    "Cap Bon": (37.500, 11.200),
    "Malta": (35.500, 14.500),
    "Crete": (34.400, 25.000),
    "Great Bitter Lake": (30.330, 32.380),
    "Suez": (29.900, 32.560),
    "Gulf of Suez": (27.900, 33.700),
    "Red Sea N": (26.500, 35.000),
    "Red Sea S": (14.800, 41.900),
    "Bab el-Mandeb": (12.600, 43.400),
    "Guardafui": (13.000, 51.500),
    "Arabian Sea": (17.000, 58.000),
    "Ras al Hadd": (22.600, 60.100),
    "Hormuz": (26.600, 56.550),
    "Gulf": (26.400, 55.800),
    "Minicoy": (8.000, 73.300),
    "Dondra": (5.700, 80.600),
    "Great Channel": (6.250, 94.500),
    "Malacca": (4.600, 99.000),
    "One Fathom": (2.900, 100.900),
    "Singapore W": (1.200, 103.400),
    "Singapore E": (1.300, 104.400),
    "Con Son": (8.000, 108.500),
    "Vietnam": (12.000, 110.000),
    "Hainan": (17.500, 111.500),
    "Hong Kong": (21.700, 115.000),
    "Taiwan Strait": (24.400, 119.200),
    "Zhoushan": (29.800, 123.200),
    "Canaries": (29.000, -18.800),
    "Cape Verde": (16.000, -26.000),
    "Sao Roque": (-7.500, -34.300),
    "Abrolhos": (-18.000, -37.600),
    "Cabo Frio": (-23.300, -41.900),
    "Colon": (9.400, -79.920),
    "Gulf of Panama": (7.000, -79.500),
    "Galera": (1.000, -80.500),
    "Santa Elena": (-2.200, -81.300),
    "Posorja": (-2.750, -80.900),
    "Punta Aguja": (-6.000, -81.700),
    "Callao": (-12.000, -77.800),
    "Arica": (-18.500, -71.000),
    "Lengua de Vaca": (-30.300, -72.000),
    "Madagascar": (-27.500, 46.000),
    "Cape Race": (46.000, -53.000),
    "Sambro": (44.400, -63.500),
    "Nantucket": (40.300, -69.600),
    "Narrows": (40.600, -74.040),
}

# Waypoints between two ports; the reverse leg uses them backwards.
_LEGS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("Rotterdam", "Felixstowe"): (),
    ("Rotterdam", "Algeciras"): (
        "Dover Strait", "Channel", "Ushant", "Finisterre", "St Vincent", "Gibraltar Strait",
    ),
    ("Algeciras", "Port Said"): ("Gibraltar Strait", "Alboran", "Cap Bon", "Malta", "Crete"),
    ("Port Said", "Jebel Ali"): (
        "Great Bitter Lake", "Suez", "Gulf of Suez", "Red Sea N", "Red Sea S",
        "Bab el-Mandeb", "Guardafui", "Arabian Sea", "Ras al Hadd", "Hormuz", "Gulf",
    ),
    ("Jebel Ali", "Colombo"): ("Gulf", "Hormuz", "Ras al Hadd", "Minicoy"),
    ("Colombo", "Singapore"): ("Dondra", "Great Channel", "Malacca", "One Fathom", "Singapore W"),
    ("Singapore", "Shanghai"): (
        "Singapore E", "Con Son", "Vietnam", "Hainan", "Hong Kong", "Taiwan Strait", "Zhoushan",
    ),
    ("Algeciras", "Santos"): (
        "Gibraltar Strait", "Spartel", "Canaries", "Cape Verde", "Sao Roque", "Abrolhos",
        "Cabo Frio",
    ),
    ("Felixstowe", "Halifax"): ("Dover Strait", "Channel", "Lizard", "Cape Race", "Sambro"),
    ("Halifax", "New York"): ("Sambro", "Nantucket", "Narrows"),
    ("Cartagena", "Balboa"): ("Colon",),
    ("Balboa", "Guayaquil"): ("Gulf of Panama", "Galera", "Santa Elena", "Posorja"),
    ("Guayaquil", "Valparaiso"): ("Posorja", "Punta Aguja", "Callao", "Arica", "Lengua de Vaca"),
    ("Durban", "Colombo"): ("Madagascar",),
}  # fmt: skip

# Liner services, sailed as pendulums (out and back); vessel i takes route i mod 5.
ROUTES: Final[tuple[tuple[str, ...], ...]] = (
    ("Rotterdam", "Algeciras", "Port Said", "Jebel Ali", "Colombo", "Singapore", "Shanghai"),
    ("Felixstowe", "Rotterdam", "Algeciras", "Santos"),
    ("Cartagena", "Balboa", "Guayaquil", "Valparaiso"),
    ("Rotterdam", "Felixstowe", "Halifax", "New York"),
    ("Durban", "Colombo", "Singapore", "Shanghai"),
)

_EARTH_RADIUS_NM: Final = 3440.065
_Vec = tuple[float, float, float]


def _to_vec(lat: float, lon: float) -> _Vec:
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def _to_latlon(v: _Vec) -> tuple[float, float]:
    x, y, z = v
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def _central_angle(a: _Vec, b: _Vec) -> float:
    cx, cy, cz = a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]
    return math.atan2(
        math.sqrt(cx * cx + cy * cy + cz * cz), a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    )


def _bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle course from one point to another, degrees from north."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlam = math.radians(lon2 - lon1)
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    return math.degrees(math.atan2(y, x)) % 360.0


class _Path:
    """A polyline of great-circle arcs through waypoints, walked by distance."""

    __slots__ = ("_angles", "_cum_nm", "_points", "_vecs", "total_nm")

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        self._points = list(points)
        self._vecs = [_to_vec(lat, lon) for lat, lon in points]
        self._angles = [_central_angle(a, b) for a, b in itertools.pairwise(self._vecs)]
        self._cum_nm = [0.0]
        for angle in self._angles:
            self._cum_nm.append(self._cum_nm[-1] + angle * _EARTH_RADIUS_NM)
        self.total_nm = self._cum_nm[-1]

    def at(self, dist_nm: float) -> tuple[float, float, float]:
        """Latitude, longitude and course after sailing `dist_nm` along the path."""
        i = min(max(bisect.bisect_right(self._cum_nm, dist_nm) - 1, 0), len(self._angles) - 1)
        omega = self._angles[i]
        a, b = self._vecs[i], self._vecs[i + 1]
        if omega < 1e-12:
            lat, lon = self._points[i]
        else:
            f = min(max((dist_nm - self._cum_nm[i]) / (omega * _EARTH_RADIUS_NM), 0.0), 1.0)
            # Spherical linear interpolation: the point a fraction f along the arc.
            wa, wb = (
                math.sin((1 - f) * omega) / math.sin(omega),
                math.sin(f * omega) / math.sin(omega),
            )
            lat, lon = _to_latlon(
                (wa * a[0] + wb * b[0], wa * a[1] + wb * b[1], wa * a[2] + wb * b[2])
            )
        end_lat, end_lon = self._points[i + 1]
        if abs(end_lat - lat) + abs(end_lon - lon) < 1e-9:
            course = _bearing_deg(*self._points[i], end_lat, end_lon)
        else:
            course = _bearing_deg(lat, lon, end_lat, end_lon)
        return lat, lon, course


def _leg_path(origin: str, destination: str) -> _Path:
    if (origin, destination) in _LEGS:
        names = _LEGS[origin, destination]
    else:
        names = tuple(reversed(_LEGS.get((destination, origin), ())))
    points = [PORTS[origin], *(_WAYPOINTS[n] for n in names), PORTS[destination]]
    return _Path(points)


class VesselState(NamedTuple):
    """Where a vessel is at a moment; `port` is None at sea."""

    lat: float
    lon: float
    speed_kn: float
    course_deg: float
    port: str | None


@dataclass(frozen=True, slots=True)
class _Segment:
    """A port stay (`port` set) or a leg at constant speed (`path` set), [start, end)."""

    start: int
    end: int
    port: str | None
    path: _Path | None
    speed_kn: float
    destination: str


class _Voyage:
    """A vessel's timeline: a port stay at the start, then legs and port stays."""

    def __init__(
        self, ports: Sequence[str], first: int, t0: int, t_end: int, rng: random.Random
    ) -> None:
        self.segments: list[_Segment] = []
        i, step = first, 1
        t = t0
        # The run begins while the ship works cargo in port, so every run has port time.
        stay = round(rng.uniform(6.0, 14.0) * HOUR)
        while True:
            self.segments.append(_Segment(t, t + stay, ports[i], None, 0.0, ports[i]))
            t += stay
            if t >= t_end:
                break
            if not 0 <= i + step < len(ports):
                step = -step  # pendulum service: turn round at the end of the route
            nxt = i + step
            path = _leg_path(ports[i], ports[nxt])
            speed = rng.uniform(14.0, 20.0)
            duration = round(path.total_nm / speed * HOUR)
            self.segments.append(_Segment(t, t + duration, None, path, speed, ports[nxt]))
            t += duration
            if t >= t_end:
                break
            i = nxt
            stay = round(rng.uniform(8.0, 20.0) * HOUR)
        self._starts = [s.start for s in self.segments]

    def segment_at(self, t: int) -> _Segment:
        """The segment in force at `t` (the first one before the run)."""
        return self.segments[max(bisect.bisect_right(self._starts, t) - 1, 0)]

    def state_at(self, t: int) -> VesselState:
        """Position, speed and course at `t`."""
        seg = self.segment_at(t)
        if seg.path is None:
            lat, lon = PORTS[seg.destination]
            return VesselState(lat, lon, 0.0, 0.0, seg.port)
        lat, lon, course = seg.path.at((t - seg.start) / HOUR * seg.speed_kn)
        return VesselState(lat, lon, seg.speed_kn, course, None)

    def mid_leg(self, t: int, margin: int) -> bool:
        """Whether the vessel sails at `t`, at least `margin` from departure and arrival."""
        seg = self.segment_at(t)
        return seg.path is not None and seg.start + margin <= t <= seg.end - margin

    def in_port(self, t: int, margin: int) -> bool:
        """Whether the vessel is at a berth at `t`, at least `margin` from arrival and departure."""
        seg = self.segment_at(t)
        return seg.port is not None and seg.start + margin <= t <= seg.end - margin


# ---------------------------------------------------------------------------
# Physics: ambient air and cargo


def _season(t0: int) -> float:
    """+1 at the northern midsummer (mid July), -1 at its midwinter."""
    doy = datetime.fromtimestamp(t0, UTC).timetuple().tm_yday
    return math.cos(2.0 * math.pi * (doy - 196) / 365.25)


def _climate_c(lat: float, season: float) -> float:
    """Seasonal mean air temperature at a latitude (tropics ~27 °C, cooler poleward)."""
    a = abs(lat)
    mean = 27.0 - 0.45 * max(0.0, a - 15.0)
    swing = min(12.0, 0.2 * a)  # seasons matter more far from the equator
    return mean + swing * season * (1.0 if lat >= 0.0 else -1.0)


def _ambient_grid(voyage: _Voyage, t0: int, minutes: int, rng: random.Random) -> list[float]:
    """Air temperature around a vessel for each minute of the run.

    Latitude sets the climate, local solar time a day/night cycle (wider in port
    than at sea) and two slow sine waves stand for passing weather.
    """
    season = _season(t0)
    phase1, phase2 = rng.uniform(0.0, 2 * math.pi), rng.uniform(0.0, 2 * math.pi)
    grid: list[float] = []
    for m in range(minutes):
        t = t0 + m * MINUTE
        state = voyage.state_at(t)
        solar_hour = ((t % DAY) / HOUR + state.lon / 15.0) % 24.0
        amplitude = 3.0 if state.port is not None else 1.0
        diurnal = amplitude * math.cos(2 * math.pi * (solar_hour - 14.0) / 24.0)
        hours = m / 60.0
        weather = 1.5 * math.sin(2 * math.pi * hours / 37.0 + phase1) + 0.7 * math.sin(
            2 * math.pi * hours / 11.0 + phase2
        )
        grid.append(_climate_c(state.lat, season) + diurnal + weather)
    return grid


@dataclass(frozen=True, slots=True)
class _Commodity:
    """A cargo type: its setpoints and the atmosphere in its box."""

    name: str
    weight: int
    setpoints: tuple[float, ...]
    supply_control: bool  # chilled cargo is controlled on supply air, frozen on return air
    humidity: tuple[float, float]
    co2: tuple[float, float]  # respiring fruit raises CO2, frozen cargo does not


def _steps(lo: float, hi: float, step: float) -> tuple[float, ...]:
    return tuple(round(lo + i * step, 1) for i in range(round((hi - lo) / step) + 1))


_COMMODITIES: Final = (
    _Commodity("frozen meat", 25, (-18.0, -25.0), False, (60.0, 85.0), (0.03, 0.06)),
    _Commodity("frozen fish", 20, (-25.0, -18.0), False, (60.0, 85.0), (0.03, 0.06)),
    _Commodity("chilled produce", 25, _steps(0.0, 4.0, 0.5), True, (85.0, 95.0), (0.1, 0.8)),
    _Commodity("bananas", 15, (13.3,), True, (88.0, 95.0), (0.4, 1.5)),
    _Commodity("pharma", 15, _steps(3.0, 7.0, 0.5), True, (40.0, 60.0), (0.03, 0.06)),
)


def _healthy_power_kw(ambient_c: float, setpoint_c: float) -> float:
    """Electrical draw of a unit holding its setpoint: grows with the heat it must move."""
    return 1.4 + 0.055 * abs(ambient_c - setpoint_c)


def _drift_curve(targets: Sequence[float], tau_h: float, pulldown_c_per_h: float) -> list[float]:
    """Deviation from setpoint, minute by minute, of a unit that stops cooling.

    While the unit is down the air approaches the ambient exponentially (time
    constant `tau_h`, with `targets` = ambient - setpoint per minute); then the
    unit pulls back linearly at `pulldown_c_per_h` until it is within
    `_RECOVERED_C`. The list ends at that moment.
    """
    k = 1.0 - math.exp(-1.0 / (tau_h * 60.0))
    u = 0.0
    curve: list[float] = []
    for target in targets:
        curve.append(u)
        u += (target - u) * k
    step = pulldown_c_per_h / 60.0
    while abs(u) > _RECOVERED_C:
        curve.append(u)
        u = math.copysign(max(0.0, abs(u) - step), u)
    return curve


def _stays_in_band(curve: Sequence[float]) -> bool:
    """Noise included, no reading of this drift strays more than 1.5 °C from setpoint."""
    return max((abs(u) for u in curve), default=0.0) <= _IN_BAND_C


def _clear_excursion(curve: Sequence[float]) -> bool:
    """Noise included, this drift reads beyond 2.0 °C as one run of clearly ≥ 45 min.

    The curve must exceed `_CLEARLY_OUT_C` for `_CLEARLY_OUT_MIN` minutes in a row,
    and the minutes above `_FLAP_C` (where noise could take a reading past 2.0 °C)
    must form one run, so that the excursion is one event.
    """
    runs_above_flap = 0
    longest_clear = current_clear = 0
    previous_above = False
    for u in curve:
        above = abs(u) > _FLAP_C
        if above and not previous_above:
            runs_above_flap += 1
        previous_above = above
        current_clear = current_clear + 1 if abs(u) >= _CLEARLY_OUT_C else 0
        longest_clear = max(longest_clear, current_clear)
    return runs_above_flap == 1 and longest_clear >= _CLEARLY_OUT_MIN


# ---------------------------------------------------------------------------
# Containers and failure scheduling


@dataclass(frozen=True, slots=True)
class _Drift:
    """A planned temperature drift: unit down from `start` to `repair`, back in band at `end`."""

    start: int
    repair: int
    curve: tuple[float, ...]
    power_off: bool

    @property
    def end(self) -> int:
        return self.start + MINUTE * len(self.curve)


@dataclass(frozen=True, slots=True)
class _Failure:
    """One injected failure of a container and what it does to its readings."""

    kind: str
    start: int
    end: int
    expect: tuple[str, ...]
    note: str
    drift: _Drift | None = None
    dropped: range = range(0)  # reading indices never sent
    door: dict[int, float] = field(default_factory=dict)  # reading index -> temp effect, °C
    bad: dict[int, tuple[str, float]] = field(default_factory=dict)  # reading -> field, value


@dataclass(slots=True, eq=False)
class _Container:
    """A reefer container: identity, cargo, reading schedule and planned events."""

    ci: int
    cid: str
    commodity: _Commodity
    setpoint: float
    times: list[int]  # reading timestamps, epoch seconds
    ambient_offset: float  # stowage: on deck in the sun or deep in the hold
    return_delta: float  # return air above supply air, for supply-controlled cargo
    humidity: float
    co2: float
    failure: _Failure | None = None
    defrost: dict[int, float] = field(default_factory=dict)  # reading index -> temp rise, °C
    duplicate: set[int] = field(default_factory=set)  # reading indices sent twice
    late_at: dict[int, list[int]] = field(default_factory=dict)  # after reading -> late copies
    late_sources: set[int] = field(default_factory=set)

    def in_failure(self, t: int) -> bool:
        return self.failure is not None and self.failure.start <= t <= self.failure.end


def _reading_times(rng: random.Random, t0: int, t_end: int) -> list[int]:
    """A fixed interval of 5-15 min, jittered by up to 30 s, from an offset in the first 15 min."""
    interval = rng.randint(5, 15) * MINUTE
    first = t0 + rng.randrange(15 * MINUTE)
    rnd = rng.random  # randint is slow for one draw per reading
    times: list[int] = []
    n, t = 0, first
    while t < t_end:
        times.append(t)
        n += 1
        t = first + n * interval + int(rnd() * 61) - 30
    return times


# Power-cut designs. A warming cut lasts long enough for the box to leave the
# tolerance clearly (power_loss and temperature_excursion); a short cut (under an
# hour) goes only where the box barely warms in that time (power_loss alone); any
# cut of 1-6 h is either, whichever the physics makes clear.
_WARMING_CUT: Final = "warming"
_SHORT_CUT: Final = "short"
_ANY_CUT: Final = "any"
_CUT_DESIGNS: Final = (_WARMING_CUT, _ANY_CUT, _SHORT_CUT)

_IMPLAUSIBLE_VALUES: Final = (
    ("temp_c", 85.0),
    ("temp_c", -99.0),
    ("humidity_pct", 140.0),
    ("co2_pct", -1.0),
)


class _FailurePlanner:
    """Chooses the faulty containers of one vessel and designs each one's failure.

    Every design keeps clear margins from the contract's default thresholds so that
    the rules raise exactly the label's `expect` kinds; the expectations follow
    from the physical model's parameters, never from running the rules.
    """

    _TRIES: Final = 12
    _CANDIDATES: Final = 80

    def __init__(
        self,
        voyage: _Voyage,
        ambient: Sequence[float],
        t0: int,
        t_end: int,
        rng: random.Random,
    ) -> None:
        self.voyage = voyage
        self.ambient = ambient
        self.t0 = t0
        self.t_end = t_end
        self.rng = rng
        self.placed: dict[str, int] = dict.fromkeys(FAILURE_KINDS, 0)
        self.cut_design = _ANY_CUT  # the design of the next power cut

    def assign(self, containers: Sequence[_Container], n_faulty: int) -> None:
        """Give `n_faulty` containers one failure each, kinds in `FAILURE_MIX` order."""
        free = list(containers)
        self.rng.shuffle(free)
        for ordinal in range(min(n_faulty, len(free))):
            wanted = FAILURE_MIX[ordinal % len(FAILURE_MIX)]
            attempts = [(wanted, _ANY_CUT), *((k, _ANY_CUT) for k in _FALLBACK_KINDS)]
            if wanted == POWER_CUT:
                # Power cuts take the designs in turn; the 'any' design is the fallback.
                design = _CUT_DESIGNS[self.placed[POWER_CUT] % len(_CUT_DESIGNS)]
                attempts.insert(0, (POWER_CUT, design))
            for kind, design in attempts:
                self.cut_design = design
                host = self._place(kind, free)
                if host is not None:
                    free.remove(host)
                    self.placed[kind] += 1
                    break

    def _place(self, kind: str, free: Sequence[_Container]) -> _Container | None:
        # Not every container suits every kind (a compressor failure needs cargo far
        # from the ambient), so try candidates in their shuffled order.
        for c in free[: self._CANDIDATES]:
            failure = self.plan(kind, c)
            if failure is not None:
                c.failure = failure
                return c
        return None

    def plan(self, kind: str, c: _Container) -> _Failure | None:
        """Design a failure of `kind` for `c`, or None when none fits its run."""
        if not c.times:
            return None
        lo, hi = c.times[0] + _EDGE_MARGIN_S, self.t_end - _EDGE_MARGIN_S
        if hi - lo < HOUR:
            return None
        if kind == COMPRESSOR_FAILURE:
            return self._compressor_failure(c, lo, hi)
        if kind == POWER_CUT:
            return self._power_cut(c, lo, hi)
        if kind == SILENT_SENSOR:
            return self._silent_sensor(c, lo, hi)
        if kind == IMPLAUSIBLE_SENSOR:
            return self._implausible_sensor(c, lo, hi)
        if kind == DOOR_OPEN_AT_SEA:
            return self._door(c, lo, hi, at_sea=True)
        if kind == DOOR_OPEN_IN_PORT:
            return self._door(c, lo, hi, at_sea=False)
        raise ValueError(f"unknown failure kind {kind!r}")

    def _targets(self, c: _Container, start: int, duration: int) -> list[float]:
        """Ambient minus setpoint at the container, per minute from `start`."""
        m0 = (start - self.t0) // MINUTE
        return [
            self.ambient[m0 + m] + c.ambient_offset - c.setpoint
            for m in range(-(-duration // MINUTE))
        ]

    def _compressor_failure(self, c: _Container, lo: int, hi: int) -> _Failure | None:
        rng = self.rng
        for _ in range(self._TRIES):
            duration = rng.randint(3 * HOUR, 8 * HOUR)
            tau_h, pulldown = rng.uniform(2.5, 4.5), rng.uniform(6.0, 12.0)
            if hi - duration <= lo:
                return None
            start = rng.randint(lo, hi - duration)
            targets = self._targets(c, start, duration)
            # Only where the ambient stays at least 8 °C above the setpoint for the
            # whole failure (in colder air the heaters still hold chilled cargo):
            # then the deviation is >= 8 * (1 - exp(-t / tau)), which passes 2.6 °C
            # after at most 0.39 tau (1.8 h), and the 3 h minimum leaves over an
            # hour clearly out of range before the repair.
            if not all(x >= _COMPRESSOR_MIN_DELTA_C for x in targets):
                continue
            drift = _Drift(
                start, start + duration, tuple(_drift_curve(targets, tau_h, pulldown)), False
            )
            if drift.end > hi or not _clear_excursion(drift.curve):
                continue
            peak = max(drift.curve, key=abs)
            note = (
                f"{c.commodity.name} at {c.setpoint:+.1f} C: compressor down "
                f"{duration / HOUR:.1f} h with fans on (tau {tau_h:.1f} h), ambient "
                f"{min(targets) + c.setpoint:.0f}..{max(targets) + c.setpoint:.0f} C, "
                f"peak deviation {peak:+.1f} C, "
                f"pull-down {pulldown:.0f} C/h"
            )
            return _Failure(
                COMPRESSOR_FAILURE, start, drift.end, (TEMPERATURE_EXCURSION,), note, drift=drift
            )
        return None

    def _power_cut(self, c: _Container, lo: int, hi: int) -> _Failure | None:
        rng, design = self.rng, self.cut_design
        short = design == _SHORT_CUT
        for _ in range(self._TRIES):
            duration = (
                rng.randint(36 * MINUTE, 55 * MINUTE) if short else rng.randint(HOUR, 6 * HOUR)
            )
            # Without fans the air warms slower than with a failed compressor.
            tau_h, pulldown = rng.uniform(10.0, 16.0), rng.uniform(6.0, 12.0)
            if hi - duration <= lo:
                return None
            start = rng.randint(lo, hi - duration)
            first_off = bisect.bisect_left(c.times, start)
            if bisect.bisect_left(c.times, start + duration) - first_off < 2:
                continue  # power_loss needs two consecutive readings without power
            targets = self._targets(c, start, duration)
            drift = _Drift(
                start, start + duration, tuple(_drift_curve(targets, tau_h, pulldown)), True
            )
            end = max(drift.end, drift.repair)
            if end > hi:
                continue
            expect: tuple[str, ...]
            if design != _WARMING_CUT and _stays_in_band(drift.curve):
                expect = (POWER_LOSS,)
            elif not short and _clear_excursion(drift.curve):
                expect = (POWER_LOSS, TEMPERATURE_EXCURSION)
            else:
                continue  # not the design asked for, or ambiguous: no such labels
            peak = max(drift.curve, key=abs, default=0.0)
            note = (
                f"{c.commodity.name} at {c.setpoint:+.1f} C: no power for {duration / 60:.0f} min "
                f"(tau {tau_h:.1f} h), peak deviation {peak:+.1f} C"
                + ("" if TEMPERATURE_EXCURSION in expect else f", kept within {_IN_BAND_C} C")
            )
            return _Failure(POWER_CUT, start, end, expect, note, drift=drift)
        return None

    def _silent_sensor(self, c: _Container, lo: int, hi: int) -> _Failure | None:
        rng = self.rng
        for _ in range(self._TRIES):
            duration = rng.randint(HOUR, 4 * HOUR)
            if hi - duration <= lo:
                return None
            start = rng.randint(lo, hi - duration)
            i = bisect.bisect_left(c.times, start)
            j = bisect.bisect_left(c.times, start + duration)
            if i == 0 or j >= len(c.times) or j == i:
                continue
            before, after = c.times[i - 1], c.times[j]
            if before < lo or after > hi:
                continue
            note = f"{j - i} readings never sent: no reading for {(after - before) // 60} min"
            # The window runs from the last reading before the gap to the first after it.
            return _Failure(
                SILENT_SENSOR, before, after, (SENSOR_SILENT,), note, dropped=range(i, j)
            )
        return None

    def _reading_span(self, c: _Container, lo: int, hi: int, count: int) -> range:
        """Indices i such that readings i .. i+count-1 all lie in [lo, hi]."""
        first = bisect.bisect_left(c.times, lo)
        last = bisect.bisect_right(c.times, hi) - count
        return range(first, last + 1)

    def _implausible_sensor(self, c: _Container, lo: int, hi: int) -> _Failure | None:
        count = self.rng.randint(1, 3)
        span = self._reading_span(c, lo, hi, count)
        if not span:
            return None
        i = self.rng.choice(span)
        name, value = _IMPLAUSIBLE_VALUES[
            self.placed[IMPLAUSIBLE_SENSOR] % len(_IMPLAUSIBLE_VALUES)
        ]
        note = f"{name} reads {value} on {count} reading(s)"
        return _Failure(
            IMPLAUSIBLE_SENSOR,
            c.times[i],
            c.times[i + count - 1],
            (SENSOR_FAULT,),
            note,
            bad={i + k: (name, value) for k in range(count)},
        )

    def _door(self, c: _Container, lo: int, hi: int, *, at_sea: bool) -> _Failure | None:
        count = self.rng.randint(1, 3)
        # At sea only mid-leg: the ship makes 14-20 kn there, far above the 2 kn
        # threshold, and the fix in force (at most 5 min old) is from the same leg.
        fits = self.voyage.mid_leg if at_sea else self.voyage.in_port
        margin = _SEA_MARGIN_S if at_sea else _PORT_MARGIN_S
        candidates = [
            i
            for i in self._reading_span(c, lo, hi, count)
            if all(fits(c.times[i + k], margin) for k in range(count))
        ]
        if not candidates:
            return None
        i = self.rng.choice(candidates)
        state = self.voyage.state_at(c.times[i])
        # The warm (or cold) air let in moves the reading at most 0.9 °C, so with the
        # 0.6 °C noise the reading stays well inside the 2.0 °C tolerance.
        door = {i + k: 0.3 * (k + 1) for k in range(count)}
        if at_sea:
            note = f"door open on {count} reading(s) at {state.speed_kn:.1f} kn"
            return _Failure(
                DOOR_OPEN_AT_SEA, c.times[i], c.times[i + count - 1], (DOOR_ALERT,), note, door=door
            )
        note = f"door open on {count} reading(s) alongside in {state.port}"
        return _Failure(DOOR_OPEN_IN_PORT, c.times[i], c.times[i + count - 1], (), note, door=door)


def _plan_defrosts(c: _Container, rng: random.Random) -> None:
    """Defrost every 6-12 h (fixed per unit): 1-2 readings, kept 1 h away from a failure."""
    if not c.times:
        return
    period = rng.uniform(6.0, 12.0) * HOUR
    f = c.failure
    blocked = (f.start - _DEFROST_MARGIN_S, f.end + _DEFROST_MARGIN_S) if f else None
    due = c.times[0] + rng.uniform(0.1, 1.0) * period
    while True:
        n = bisect.bisect_left(c.times, due)
        count = rng.randint(1, 2)
        if n + count > len(c.times):
            return
        if blocked and c.times[n] <= blocked[1] and c.times[n + count - 1] >= blocked[0]:
            due = blocked[1] + 1  # postpone until the unit has recovered
            continue
        for k in range(count):
            c.defrost[n + k] = rng.uniform(1.5, 4.8)  # setpoint + 5 °C at most
        due = c.times[n + count - 1] + period


def _plan_resends(c: _Container, rng: random.Random, dup_rate: float, late_rate: float) -> None:
    """Pick readings the gateway sends twice (right after) or again late (within 1 h)."""

    def clean(n: int) -> bool:
        # Re-sends stay away from failures and defrosts so that ground truth stays simple.
        return n not in c.defrost and not c.in_failure(c.times[n])

    times = c.times
    for n in range(len(times)):
        r = rng.random()
        if r >= dup_rate + late_rate or not clean(n):
            continue
        if r < dup_rate:
            c.duplicate.add(n)
            continue
        target = n + rng.randint(1, 3)  # re-sent after 1-3 newer readings
        if (
            target >= len(times)
            or times[target] - times[n] > _LATE_WITHIN_S
            or not all(clean(k) for k in range(n + 1, target + 1))
        ):
            continue
        c.late_at.setdefault(target, []).append(n)
        c.late_sources.add(n)


# ---------------------------------------------------------------------------
# Emission

# Heap items: (ts, order, vessel, container, sub, line, tag, original ts). The first
# five fields are unique, so the merge never compares lines; order 0 puts a
# position before the telemetry of the same second.
_Item = tuple[int, int, int, int, int, bytes, int, int]
_PLAIN: Final = 0
_RESENT: Final = 1  # an original reading that is re-sent later
_DUPLICATE_COPY: Final = 2
_LATE_COPY: Final = 3

_MALFORMED_KINDS: Final = (
    "not JSON",
    "JSON array",
    "unknown type",
    "missing required field",
    "boolean for a number",
    "non-finite number 1e999",
    "ts without offset",
    "bad check digit",
    "latitude 95",
    "invalid UTF-8",
    "number as a string",
)

# Stand-ins when a malformed line is due before any real record of that type.
_TELEMETRY_TEMPLATE: Final[dict[str, Any]] = {
    "type": TELEMETRY, "container_id": "MSKU1234565", "vessel_id": "IMO9778791",
    "ts": "2026-11-20T00:00:00Z", "setpoint_c": -18.0, "temp_c": -18.3, "power_kw": 2.7,
}  # fmt: skip


def _malformed_line(variant: int, telemetry: bytes | None, position: bytes) -> tuple[bytes, str]:
    """The malformed line of one variant, built from a recent valid record, and its topic."""
    tel: dict[str, Any] = orjson.loads(telemetry) if telemetry else dict(_TELEMETRY_TEMPLATE)
    kind = _MALFORMED_KINDS[variant]
    if kind == "latitude 95":
        return orjson.dumps({**orjson.loads(position), "lat": 95.0}), POSITION
    if kind == "not JSON":
        line = orjson.dumps(tel)
        return line[: len(line) // 2], TELEMETRY  # cut off mid-record, as by a dropped link
    if kind == "JSON array":
        return b"[" + orjson.dumps(tel) + b"]", TELEMETRY
    if kind == "unknown type":
        return orjson.dumps({**tel, "type": "reefer.diagnostics"}), TELEMETRY
    if kind == "missing required field":
        return orjson.dumps({k: v for k, v in tel.items() if k != "power_kw"}), TELEMETRY
    if kind == "boolean for a number":
        return orjson.dumps({**tel, "temp_c": True}), TELEMETRY
    if kind == "non-finite number 1e999":
        # orjson cannot write an infinity, so splice the literal into the text.
        line = orjson.dumps({**tel, "temp_c": "@@inf@@"})
        return line.replace(b'"@@inf@@"', b"1e999"), TELEMETRY
    if kind == "ts without offset":
        return orjson.dumps({**tel, "ts": tel["ts"].rstrip("Z")}), TELEMETRY
    if kind == "bad check digit":
        cid = tel["container_id"]
        return orjson.dumps(
            {**tel, "container_id": f"{cid[:10]}{(int(cid[10]) + 1) % 10}"}
        ), TELEMETRY
    if kind == "invalid UTF-8":
        line = orjson.dumps(tel)
        cid = tel["container_id"].encode()
        return line.replace(cid, b"\xff\xfe" + cid[2:]), TELEMETRY
    if kind == "number as a string":
        return orjson.dumps({**tel, "temp_c": str(tel["temp_c"])}), TELEMETRY
    raise AssertionError(kind)


def _noise(rnd: Callable[[], float], sigma: float) -> float:
    """Zero-mean noise with standard deviation `sigma`, bounded by 3 sigma.

    A sum of three uniforms is close enough to a normal for sensor noise and costs a
    fraction of `random.gauss`, which matters at a million draws per run.
    """
    return (rnd() + rnd() + rnd() - 1.5) * 2.0 * sigma


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


@dataclass(slots=True, eq=False)
class _Vessel:
    index: int
    imo: str
    voyage: _Voyage
    ambient: list[float]
    containers: list[_Container]


@dataclass(slots=True)
class _Stats:
    records: int = 0
    readings: int = 0
    positions: int = 0
    malformed: int = 0
    labels: int = 0


class _Simulation:
    """Plans a whole fleet for a config, then emits its lines and collects labels."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.t0 = parse_ts(cfg.start) // US_PER_S
        self.t_end = self.t0 + round(cfg.hours * HOUR)
        self.stats = _Stats()
        self._labels: list[Label] = []
        self._done = False
        used_imos: set[str] = set()
        used_cids: set[str] = set()
        self.vessels = [self._plan_vessel(vi, used_imos, used_cids) for vi in range(cfg.vessels)]

    def _rng(self, *purpose: object) -> random.Random:
        # String seeds hash with SHA-512, independent of PYTHONHASHSEED.
        return random.Random("/".join(map(str, ("coldwake", self.cfg.seed, *purpose))))

    def _plan_vessel(self, vi: int, used_imos: set[str], used_cids: set[str]) -> _Vessel:
        cfg = self.cfg
        rng = self._rng("vessel", vi)
        imo = _make_imo(rng, used_imos)
        route = ROUTES[vi % len(ROUTES)]
        voyage = _Voyage(route, (vi // len(ROUTES)) % len(route), self.t0, self.t_end, rng)
        ambient = _ambient_grid(voyage, self.t0, (self.t_end - self.t0) // MINUTE + 2, rng)
        containers = [self._plan_container(vi, ci, used_cids) for ci in range(cfg.containers)]
        planner = _FailurePlanner(voyage, ambient, self.t0, self.t_end, self._rng("faults", vi))
        planner.assign(containers, round(cfg.fault_rate * cfg.containers))
        for c in containers:
            _plan_defrosts(c, self._rng("defrost", vi, c.ci))
            _plan_resends(c, self._rng("resend", vi, c.ci), cfg.duplicate_rate, cfg.late_rate)
        vessel = _Vessel(vi, imo, voyage, ambient, containers)
        self._labels.extend(self._planned_labels(vessel))
        return vessel

    def _plan_container(self, vi: int, ci: int, used_cids: set[str]) -> _Container:
        rng = self._rng("container", vi, ci)
        commodity = rng.choices(_COMMODITIES, weights=[c.weight for c in _COMMODITIES])[0]
        return _Container(
            ci=ci,
            cid=_make_container_id(rng, used_cids),
            commodity=commodity,
            setpoint=rng.choice(commodity.setpoints),
            times=_reading_times(rng, self.t0, self.t_end),
            ambient_offset=rng.uniform(-1.0, 2.5),
            return_delta=rng.uniform(2.0, 3.5)
            if commodity.name == "bananas"  # ripening fruit gives off heat
            else rng.uniform(1.0, 2.5),
            humidity=rng.uniform(*commodity.humidity),
            co2=rng.uniform(*commodity.co2),
        )

    def _planned_labels(self, v: _Vessel) -> Iterator[Label]:
        for c in v.containers:
            f = c.failure
            if f is not None:
                yield Label(c.cid, v.imo, f.kind, _fmt(f.start), _fmt(f.end), f.expect, f.note)
            runs: list[list[int]] = []
            for n in sorted(c.defrost):
                if runs and runs[-1][-1] == n - 1:
                    runs[-1].append(n)
                else:
                    runs.append([n])
            for run in runs:
                top = max(c.defrost[n] for n in run)
                yield Label(
                    c.cid, v.imo, DEFROST, _fmt(c.times[run[0]]), _fmt(c.times[run[-1]]), (),
                    f"{len(run)} defrost reading(s), up to setpoint {top:+.1f} C",
                )  # fmt: skip

    # -- record streams -------------------------------------------------------

    def _positions(self, v: _Vessel) -> Iterator[_Item]:
        """AIS-like fixes every 2-5 min from the first second of the run."""
        rng = self._rng("positions", v.index)
        t = self.t0
        while t < self.t_end:
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
                "ts": _fmt(t),
                "lat": _r(state.lat, 5),
                "lon": _r(state.lon, 5),
                "sog_kn": _r(sog, 1),
                "cog_deg": _r(cog, 1) % 360.0,
            }
            yield (t, 0, v.index, 0, 0, orjson.dumps(record), _PLAIN, t)
            t += rng.randint(120, 300)

    def _readings(self, v: _Vessel, c: _Container) -> Iterator[_Item]:
        """The container's readings in time order, with its duplicate and late re-sends."""
        rng = self._rng("noise", v.index, c.ci)
        rnd, uniform = rng.random, rng.uniform
        f = c.failure
        drift = f.drift if f else None
        dropped = f.dropped if f else range(0)
        door = f.door if f else {}
        bad = f.bad if f else {}
        sp, supply = c.setpoint, c.commodity.supply_control
        t0, ambient = self.t0, v.ambient
        noise = 0.0
        pending: dict[int, bytes] = {}
        for n, t in enumerate(c.times):
            # The controller's regulation error wanders slowly (AR(1)), never past 0.55 °C.
            noise = min(max(0.6 * noise + _noise(rnd, 0.15), -_HEALTHY_NOISE_C), _HEALTHY_NOISE_C)
            if n in dropped:
                continue
            amb = ambient[(t - t0) // MINUTE] + c.ambient_offset
            temp = sp + noise
            # Secondary sensors get plain uniform noise: cheaper, and nothing rides on its shape.
            power = min(max(_healthy_power_kw(amb, sp) + 0.4 * (rnd() - 0.5), 1.5), 4.5)
            ret = temp + (c.return_delta if supply else 0.0) + 0.3 * (rnd() - 0.5)
            humidity = c.humidity + 4.0 * (rnd() - 0.5)
            co2 = c.co2 * (1.0 + 0.15 * (rnd() - 0.5))
            defrost = n in c.defrost
            if defrost:
                # The coil heater warms the air on purpose; the excursion rule skips it.
                temp = sp + c.defrost[n]
                power = uniform(3.0, 4.5)
                ret = temp + 0.5
            if drift is not None and drift.start <= t < drift.end:
                u = drift.curve[(t - drift.start) // MINUTE]
                temp = sp + u + _noise(rnd, _FAILURE_NOISE_C / 3.0)  # |noise| <= 3 sigma
                if t < drift.repair:
                    power = 0.0 if drift.power_off else uniform(0.6, 1.1)  # fans only
                    ret = temp + uniform(0.1, 0.5)
                else:
                    power = uniform(4.6, 5.8)  # full capacity while pulling down
                    ret = temp + uniform(1.0, 3.0)
            if n in door:
                # Outside air moves the box toward the ambient; fresh air flushes the CO2.
                effect = math.copysign(door[n], amb - sp)
                temp += effect
                ret += 2.0 * effect
                humidity += 5.0
                co2 = 0.04
            record: dict[str, Any] = {
                "type": TELEMETRY,
                "container_id": c.cid,
                "vessel_id": v.imo,
                "ts": _fmt(t),
                "setpoint_c": sp,
                # round(...) + 0.0 turns a rounded -0.0 into 0.0.
                "temp_c": round(temp, 1) + 0.0,
                "power_kw": round(power, 2) + 0.0,
                "return_c": round(ret, 1) + 0.0,
                "ambient_c": round(amb + 0.6 * (rnd() - 0.5), 1) + 0.0,
                "humidity_pct": round(min(max(humidity, 20.0), 99.5), 1),
                "co2_pct": round(max(co2, 0.01), 2),
                "o2_pct": round(20.95 - 0.9 * co2 + 0.1 * (rnd() - 0.5), 2),
                "door_open": n in door,
                "defrost": defrost,
            }
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
        for v in self.vessels:
            streams.append(self._positions(v))
            streams.extend(self._readings(v, c) for c in v.containers)
        keys = {(v.index, c.ci): c.cid.encode() for v in self.vessels for c in v.containers}
        imos = [v.imo for v in self.vessels]
        stats = self.stats
        mal_rng = self._rng("malformed")
        rate = self.cfg.malformed_rate
        originals: dict[tuple[int, int, int], int] = {}
        # Malformed lines imitate the latest records of the vessel they follow.
        last_telemetry: list[bytes | None] = [None] * len(self.vessels)
        last_position = [b""] * len(self.vessels)
        line_no = 0
        for ts, order, vi, ci, _sub, line, tag, orig_ts in _merge(streams, self.t_end):
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
                variant = stats.malformed % len(_MALFORMED_KINDS)
                bad, topic = _malformed_line(variant, last_telemetry[vi], last_position[vi])
                stats.malformed += 1
                yield Emission(bad, topic, b"")
                self._labels.append(
                    Label(
                        "",
                        imos[vi],
                        MALFORMED,
                        _fmt(ts),
                        _fmt(ts),
                        (),
                        f"line {line_no}: {_MALFORMED_KINDS[variant]}",
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
        v = self.vessels[vi]
        cid = v.containers[ci].cid
        original = originals.pop((vi, ci, orig_ts))
        if tag == _DUPLICATE_COPY:
            note = f"line {line_no}: duplicate of line {original}"
            return Label(cid, v.imo, DUPLICATE, _fmt(orig_ts), _fmt(orig_ts), (), note)
        note = f"line {line_no}: late copy of line {original}, {ts - orig_ts} s behind"
        return Label(cid, v.imo, LATE, _fmt(orig_ts), _fmt(orig_ts), (), note)

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
    yield from _Simulation(cfg).emissions()


def generate(cfg: SimConfig) -> Iterator[bytes]:
    """JSONL lines (no trailing newline) in emission order; same config, same bytes."""
    for emission in _Simulation(cfg).emissions():
        yield emission.line


def labels(cfg: SimConfig) -> list[Label]:
    """Ground truth for `generate(cfg)`, sorted by (start, container_id, kind)."""
    return _Simulation(cfg).labels()


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


def _write(cfg: SimConfig, out_dir: Path) -> tuple[Path, Path, _Stats]:
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path, labels_path = out_dir / "records.jsonl", out_dir / "labels.jsonl"
    sim = _Simulation(cfg)
    # One pass feeds both outputs: the emission loop also collects the labels.
    # A Kafka sink (`--kafka BROKERS`) would consume the same `sim.emissions()`
    # stream here, producing each `Emission.line` to `Emission.topic` with
    # `Emission.key`, in this order, instead of (or besides) writing the file.
    with records_path.open("wb") as fh:
        fh.writelines(e.line + b"\n" for e in sim.emissions())
    with labels_path.open("wb") as fh:
        fh.writelines(_label_line(label) + b"\n" for label in sim.labels())
    return records_path, labels_path, sim.stats


def write_files(cfg: SimConfig, out_dir: Path) -> tuple[Path, Path]:
    """Write `out_dir/records.jsonl` and `out_dir/labels.jsonl`; return their paths."""
    records_path, labels_path, _ = _write(cfg, out_dir)
    return records_path, labels_path


# ---------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.simulator",
        description="Write a simulated reefer fleet (records.jsonl) and its ground truth "
        "(labels.jsonl).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    # One option per SimConfig field, so the CLI follows the config.
    for f in fields(SimConfig):
        default = f.default
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(default),
            default=default,
            help=f"default {default}",
        )
    parser.add_argument(
        "--kafka",
        metavar="BROKERS",
        help="also produce every record to these bootstrap servers "
        "(reefer.telemetry keyed by container, vessel.position by vessel)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="records per second to produce with --kafka (default 0: as fast as possible)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; prints a one-line summary to stderr."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cfg = SimConfig(**{f.name: getattr(args, f.name) for f in fields(SimConfig)})
    except ValueError as exc:
        parser.error(str(exc))
    began = time.perf_counter()  # for the summary only; the output never sees the clock
    records_path, labels_path, stats = _write(cfg, args.out)
    seconds = time.perf_counter() - began
    if args.kafka:
        from flows.kafka import produce_file

        sent, took = produce_file(records_path, args.kafka, rate=args.rate)
        print(
            f"simulator: produced {sent:,} records to {args.kafka} in {took:.1f} s "
            f"({sent / max(took, 1e-9):,.0f}/s)",
            file=sys.stderr,
        )
    print(
        f"simulator: {stats.records} records ({stats.readings} readings, "
        f"{stats.positions} positions, {stats.malformed} malformed), {stats.labels} labels "
        f"in {seconds:.2f} s -> {records_path}, {labels_path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
