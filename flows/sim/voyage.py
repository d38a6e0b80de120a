"""Where the vessels sail: ports, sea waypoints, liner routes, great-circle legs, `Voyage`.

A vessel starts the run in port, then sails its route as a pendulum (out and
back), each leg a polyline of great-circle arcs through waypoints that keep it
off the land, at a constant speed drawn per leg.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from flows.sim.config import HOUR

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
class Segment:
    """A port stay (`port` set) or a leg at constant speed (`path` set), [start, end)."""

    start: int
    end: int
    port: str | None
    path: _Path | None
    speed_kn: float
    destination: str


class Voyage:
    """A vessel's timeline: a port stay at the start, then legs and port stays."""

    def __init__(
        self, ports: Sequence[str], first: int, t0: int, t_end: int, rng: random.Random
    ) -> None:
        self.segments: list[Segment] = []
        i, step = first, 1
        t = t0
        # The run begins while the ship works cargo in port, so every run has port time.
        stay = round(rng.uniform(6.0, 14.0) * HOUR)
        while True:
            self.segments.append(Segment(t, t + stay, ports[i], None, 0.0, ports[i]))
            t += stay
            if t >= t_end:
                break
            if not 0 <= i + step < len(ports):
                step = -step  # pendulum service: turn round at the end of the route
            nxt = i + step
            path = _leg_path(ports[i], ports[nxt])
            speed = rng.uniform(14.0, 20.0)
            duration = round(path.total_nm / speed * HOUR)
            self.segments.append(Segment(t, t + duration, None, path, speed, ports[nxt]))
            t += duration
            if t >= t_end:
                break
            i = nxt
            stay = round(rng.uniform(8.0, 20.0) * HOUR)
        self._starts = [s.start for s in self.segments]

    def segment_at(self, t: int) -> Segment:
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
